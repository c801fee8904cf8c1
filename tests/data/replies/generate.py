"""Regenerate replies.json: 36 varied questions, each sent alone to a running LLM service, deltas kept as streamed.

    .venvs/frontend/bin/python tests/data/replies/generate.py http://127.0.0.1:<port>

Start the service first (`LLM_PORT=<port> .venvs/llm/bin/python -m llm_service`, embedded default model).
"""

import datetime
import json
import sys
import time
from pathlib import Path

from openai import OpenAI

url = sys.argv[1].rstrip("/")
client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
QUESTIONS = [
    "What is the capital of France?",
    "How do I make a cup of tea?",
    "Tell me a joke.",
    "Why is the sky blue?",
    "What should I cook for dinner tonight?",
    "Can you explain what a black hole is?",
    "What's the weather usually like in London?",
    "How many legs does a spider have?",
    "Give me three tips for sleeping better.",
    "Who wrote Romeo and Juliet?",
    "What does 'ask not what your country can do for you' mean?",
    "How do airplanes stay in the air?",
    "I feel tired today. Any advice?",
    "What is the difference between a virus and a bacterium?",
    "Recommend a good book for a long flight.",
    "How do I say hello in Spanish?",
    "What time zone is Tokyo in?",
    "Is it healthy to drink coffee every day?",
    "Explain photosynthesis to a child.",
    "What are the planets in our solar system?",
    "How can I learn to play the guitar?",
    "What is two plus two?",
    "Summarise the story of Cinderella.",
    "Why do cats purr?",
    "What's a good name for a golden retriever?",
    "How do I fix a flat bicycle tyre?",
    "Can you help me plan a weekend in Rome?",
    "What is machine learning?",
    "Hello! How are you today?",
    "What happened in 1969?",
    "How far away is the Moon?",
    "Write a short poem about the sea.",
    "Should I learn Python or JavaScript first?",
    "What's the best way to save money?",
    "Thank you, that's all for now.",
    "Describe your favourite colour.",
]
rows = []
start = time.time()
for i, q in enumerate(QUESTIONS):
    stream = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": q}], max_tokens=160, temperature=0.7, seed=i, stream=True
    )
    deltas, finish = [], None
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append(choice.delta.content)
            finish = choice.finish_reason or finish
    rows.append({"question": q, "deltas": deltas, "reply": "".join(deltas).strip(), "finish_reason": finish})
    print(i, repr("".join(deltas)[:100]), file=sys.stderr, flush=True)
models = client.models.list()
doc = {
    "provenance": {
        "how": "tests/data/replies/generate.py: each question sent alone (the service's default system prompt) to the "
        "LLM service with its embedded default model; deltas as streamed",
        "model": models.data[0].id,
        "settings": {"temperature": 0.7, "max_tokens": 160, "seed": "the question's index"},
        "generated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
    },
    "replies": rows,
}
(Path(__file__).parent / "replies.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False))
print("done", time.time() - start, file=sys.stderr)

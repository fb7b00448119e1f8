"""EDSL's own survey loop on a study, for ``peers.py --edsl-python`` (run by that interpreter).

An EDSL ``Survey`` of ``QuestionMultipleChoice``, one ``Agent`` per persona with its
description as a trait, ``Model(service_name="openai_compatible")`` pointed at the server,
``run(n=...)`` with a fresh cache (else repeated draws would be answered from it). EDSL's
defaults are tuned for hosted APIs (50 requests in flight, a 60 s timeout); a CPU server
answering 50 long generations at once times most of them out, so this sets 8 in flight and a
600 s timeout (``EDSL_MAX_CONCURRENT_TASKS``, ``EDSL_API_TIMEOUT``).

    python _edsl_driver.py STUDY.json URL MODEL ITERATIONS MAX_TOKENS OUT.json
"""

import collections
import json
import os
import sys
import time
from pathlib import Path

study_file, url, model_name, iterations, max_tokens, out = sys.argv[1:]
os.environ["OPENAI_COMPATIBLE_BASE_URL"] = url
os.environ["EDSL_MAX_CONCURRENT_TASKS"] = "8"
os.environ["EDSL_API_TIMEOUT"] = "600"

from edsl import Agent, AgentList, Cache, Model, QuestionMultipleChoice, Survey  # noqa: E402

study = json.loads(Path(study_file).read_text())
survey = Survey(
    [
        QuestionMultipleChoice(
            question_name=q["id"], question_text=q["text"], question_options=q["options"]
        )
        for q in study["questions"]
    ]
)
agents = AgentList(
    [Agent(name=p["id"], traits={"persona": p["description"]}) for p in study["personas"]]
)
model = Model(
    model_name, service_name="openai_compatible", temperature=1.0, max_tokens=int(max_tokens)
)
started = time.perf_counter()
results = (
    survey.by(agents)
    .by(model)
    .run(
        n=int(iterations),
        cache=Cache(),
        disable_remote_cache=True,
        disable_remote_inference=True,
        progress_bar=False,
        print_exceptions=False,
    )
)
seconds = time.perf_counter() - started
rows = [
    {
        "persona": row["agent_name"],
        "question": q["id"],
        "answer": row[q["id"]],
        "tokens": sum(row.get(f"{q['id']}_{kind}_tokens") or 0 for kind in ("input", "output")),
    }
    for row in results.to_dicts()
    for q in study["questions"]
]
failures = collections.Counter(
    type(entry.exception).__name__
    for interview in results.task_history.exceptions
    for entries in interview.values()
    for entry in entries
)
Path(out).write_text(json.dumps({"seconds": seconds, "rows": rows, "failures": failures}))

"""Reference solution of lab 07, run by `lab solve lab-07` in your workspace with your sandbox's settings.

It decides from the evaluation's figures and its own review, never from the lab's files: the candidate is the
version whose description says so; a slice flagged by the evaluation makes it a no-go, whatever the overall figure.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab_runtime.labs.scripting import lab

versions = json.loads(lab("model", "list", "--json").stdout)
candidate = str(next(v["version"] for v in versions if v["description"].startswith("candidate")))

# 1. The candidate against the champion, on the same rows.
evaluation = json.loads(lab("eval", "run", candidate, "--json").stdout)
accuracy = next(f for f in evaluation["overall"] if f["metric"] == "accuracy")
flagged = [s for s in evaluation["slices"] if s["flagged"]]
print(f"version {candidate}: accuracy {accuracy['difference']:+.3f} against the champion "
      f"({accuracy['low']:+.3f} to {accuracy['high']:+.3f}); flagged: {[s['name'] for s in flagged]}")  # fmt: skip

# 2. Ten rows of its queue by hand. A reviewer's rule of thumb: decline a high probability of default,
# approve a low one, refer the rest to a senior reviewer.
for _ in range(10):
    item = json.loads(lab("review", "next", "--json").stdout)["item"]
    p = item["candidate"]["probability"]
    label = "decline" if p >= 0.6 else "approve" if p < 0.3 else "refer"
    shown = json.loads(lab("review", "label", str(item["id"]), label, "--note", f"p={p:.2f}", "--json").stdout)
    print(f"item {item['id']} ({item['why']}): {label}; the truth: {shown['truth']}")
print(lab("review", "status").stdout)
decision = evaluation["verdict"]
lab("review", "verdict", decision, "--note", "the slice regression the evaluation flagged")

# 3. The note, from the evaluation's figures.
worst = min(flagged, key=lambda s: s["difference"]) if flagged else None
slice_line = worst["name"] if worst else "none"
evidence = (
    f"overall accuracy {accuracy['difference']:+.3f} (95 % CI {accuracy['low']:+.3f} to {accuracy['high']:+.3f}), "
)
if worst:
    evidence += f"but {worst['name']} {worst['difference']:+.3f} (CI {worst['low']:+.3f} to {worst['high']:+.3f}, "
    evidence += f"{worst['rows']} rows)"
else:
    evidence += "no slice flagged"
note = Path("evaluation-note.md")
note.write_text(f"# Evaluation note\n\n- Decision: {decision}\n- Slice: {slice_line}\n- Evidence: {evidence}\n")
print(note.read_text())

# 4. The canary's gate holds a no-go.
refused = lab("canary", "start", candidate, check=False)
print(refused.stderr.strip() or refused.stdout.strip())

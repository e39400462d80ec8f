"""Hands-on exercises, one Markdown file per exercise, grouped by rung (v1, v2, v3, v4, hw).

``python -m exercises list | show ID | check ID --answer X --run DIR | skeleton ID --out F |
check ID --file F``. Answers are checked against the learner's own run output
(``checks.py``); kernel exercises run the project's own kernel tests against the learner's
file (``skeleton.py``).
"""

"""Fast unit tests of the pure functions, one file per module (no server, no database unless the
function needs one). A package, so that `unit.test_evidence` and the end-to-end `test_evidence`
do not collide; run alone with `.venv/bin/pytest -q tests/unit`."""

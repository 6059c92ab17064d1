"""Exit 1, naming each file, when the working tree's results/ differ from the commit.

.ci/run calls this after the README's main command: a fresh clone must reproduce the
committed results byte for byte. A manifest may differ only in the fields that change
from run to run (``mhsnn.experiment.VOLATILE``: the commit and the clock) and, with a note,
in those naming the machine and its packages (``ENVIRONMENT``)."""

import json
import subprocess
import sys

from mhsnn.experiment import ENVIRONMENT, VOLATILE


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def stable(text: str, skip=VOLATILE + ENVIRONMENT) -> dict:
    return {k: v for k, v in json.loads(text).items() if k not in skip}


def main() -> int:
    moved = []
    for line in git("status", "--porcelain", "--untracked-files=all", "results/").splitlines():
        status, path = line[:2], line[3:]
        if status.strip() == "M" and path.endswith("_manifest.json"):
            before, after = git("show", f"HEAD:{path}"), open(path).read()
            if stable(before) == stable(after):
                env = [k for k in ENVIRONMENT
                       if json.loads(before).get(k) != json.loads(after).get(k)]
                if env:
                    print(f"note: {path}: another {', '.join(env)} than the committed run's, "
                          "with the same results", file=sys.stderr)
                continue
        moved.append(f"{status.strip()} {path}")
    for entry in moved:
        print(f"results changed: {entry}", file=sys.stderr)
    if moved:
        print(f"error: the README's main command changed {len(moved)} committed result "
              "file(s); `git diff results/` shows how", file=sys.stderr)
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())

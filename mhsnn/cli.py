"""The ``mhsnn`` command: ``mhsnn reproduce`` runs both of the paper's experiments.

    mhsnn reproduce        [--preset quick|paper] [--set KEY=VALUE ...] [--out DIR] [--resume | --fresh]
    mhsnn sigma-sweep      (same options)
    mhsnn data-efficiency  (same options)

``mhsnn COMMAND --help`` lists the options.
"""

from __future__ import annotations

import sys

COMMANDS = ("reproduce", "sigma-sweep", "data-efficiency")


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"mhsnn: unknown command {argv[0]!r} (choose from {', '.join(COMMANDS)})",
                  file=sys.stderr)
            raise SystemExit(2)
        print(__doc__)
        return
    from experiments import common, data_efficiency, sigma_sweep

    command, rest = argv[0], argv[1:]
    chosen = {"reproduce": [sigma_sweep, data_efficiency], "sigma-sweep": [sigma_sweep],
              "data-efficiency": [data_efficiency]}[command]
    cfg, out, mode = common.parse_args(rest, f"mhsnn {command}")
    for module in chosen:
        common.main_guard(lambda m=module: m.run(cfg, out, mode))


if __name__ == "__main__":
    main()

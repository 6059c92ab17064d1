"""The ``mhsnn`` command: ``mhsnn reproduce`` runs both of the paper's experiments."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="mhsnn", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["reproduce", "sigma-sweep", "data-efficiency"],
                    help="reproduce: sigma sweep then data efficiency")
    args, rest = ap.parse_known_args(argv)
    from experiments import common, data_efficiency, sigma_sweep

    chosen = {"reproduce": [sigma_sweep, data_efficiency], "sigma-sweep": [sigma_sweep],
              "data-efficiency": [data_efficiency]}[args.command]
    cfg, out, resume = common.parse_args(rest, f"mhsnn {args.command}")
    for module in chosen:
        common.main_guard(lambda m=module: m.run(cfg, out, resume))


if __name__ == "__main__":
    main()

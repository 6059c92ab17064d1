"""The ``mhsnn`` command: every experiment by name, and the resolved configuration.

    mhsnn                  list the commands
    mhsnn NAME [OPTIONS]   run an experiment (``mhsnn NAME --help`` lists its options)
    mhsnn config [--preset P] [--set KEY=VALUE ...]   print the resolved configuration as TOML
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module under experiments/, one line); "reproduce" runs the paper's two.
COMMANDS = {
    "reproduce": (None, "both of the paper's experiments: sigma-sweep, then data-efficiency"),
    "sigma-sweep": ("sigma_sweep", "experiment 1: test accuracy against the chip's sigma"),
    "data-efficiency": ("data_efficiency", "experiment 2: test accuracy against training rows"),
    "tempering": ("tempering", "MH against parallel tempering at an equal budget"),
    "nonidealities": ("nonidealities", "MH against SG on mismatch, quantisation, noise ..."),
    "external-chip": ("external_chip", "MH training a NumPy chip through a callback"),
    "chip-methods": ("chip_methods", "every trainer on a NumPy chip at equal presentations"),
    "chip-units": ("chip_units", "the weight-scale probe on chips with other weight units"),
    "any-chip": ("any_chip", "every model-free method, defaults only, on a panel of chips"),
    "xylo": ("xylo", "SynSense Xylo's simulator: model-free methods beside the vendor's workflow"),
    "scaling": ("scaling", "MH, PT and SG as networks grow, on four data sets"),
    "samplers": ("samplers", "six samplers at equal chip presentations (ESS, accuracy)"),
    "query-budget": ("query_budget", "accuracy against chip presentations: MH, ES, SPSA, SG"),
    "posterior-at-scale": ("posterior_at_scale", "EKI, EKS, SMC, DA, pCN at 1k-10k weights"),
    "predictives": ("predictives", "which predictive is calibrated, on the same weight sets"),
    "ceiling": ("ceiling", "what the encoding allows: an MLP and logistic regression on the counts"),
    "transfer": ("transfer", "weights trained on one chip, deployed on 20 sibling chips"),
    "benchmark": ("benchmark", "MH chain-steps/s: the engine against BlackJAX and NumPy"),
    "tune-mh": ("tune_mh", "the tuning run that chose MH's c, v and start"),
    "tune-sg": ("tune_sg", "the tuning run that chose SG's learning rate and start"),
    "tune-es": ("tune_es", "the tuning run that chose each ES's and SPSA's settings"),
    "tune-wide": ("tune_wide", "the tuning run of the wide-network methods' settings"),
    "tune-ensembles": ("tune_ensembles", "the tuning run of the ensembles' sizes, goal cell"),
    "report": ("report", "render the docs' and README's tables and figures from results/"),
    "config": (None, "print the resolved configuration as TOML (--preset, --set)"),
}
EXPERIMENT_OPTIONS = ("[--preset quick|paper|gpu] [--set KEY=VALUE ...] [--out DIR] "
                      "[--resume | --fresh] [--distributed]")


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: mhsnn COMMAND [OPTIONS]", "", "commands:"]
    lines += [f"  {name:{width}s}  {line}" for name, (_, line) in COMMANDS.items()]
    lines += ["", f"Experiments take {EXPERIMENT_OPTIONS};",
              "benchmark, chip-methods, chip-units, any-chip, xylo, posterior-at-scale, "
              "predictives, ceiling, report and tune-* have their own (mhsnn COMMAND --help)."]
    return "\n".join(lines)


def print_config(argv: list[str]) -> None:
    from mhsnn import config

    ap = argparse.ArgumentParser(prog="mhsnn config",
                                 description="print the resolved configuration as TOML")
    ap.add_argument("--preset", default="quick", help="quick (default), paper (CPU-sized) or gpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    try:
        cfg = config.build(args.preset, args.sets)
    except config.ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.stdout.write(config.to_toml(cfg))


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"mhsnn: unknown command {command!r} (choose from {', '.join(COMMANDS)})",
              file=sys.stderr)
        raise SystemExit(2)
    if command == "config":
        print_config(rest)
        return
    if command == "reproduce":
        from mhsnn import experiment

        cfg, out, mode = experiment.parse_args(rest, "mhsnn reproduce: " + COMMANDS[command][1])
        for name in ("sigma_sweep", "data_efficiency"):
            run = _experiment(name).run
            experiment.main_guard(lambda r=run: r(cfg, out, mode), out)
        return
    _experiment(COMMANDS[command][0]).main(rest)


def _experiment(name: str):
    """An experiment module by name: the registry above is this command's only tie to the
    ``experiments`` package, whose modules depend on the library, never the reverse."""
    return importlib.import_module(f"experiments.{name}")


if __name__ == "__main__":
    main()

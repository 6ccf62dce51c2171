"""Shared by the patch tests: running the CLI, finding fixtures, the offline validators."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
INSTRUMENT = "/opt/draios/bin/instrument"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    from workload_agent.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def case_dirs() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir() and (p / "args").exists())


def case_input(case: Path) -> Path:
    (path,) = [p for p in case.iterdir() if p.name.startswith("input.")]
    return path


def case_kind(case: Path) -> str:
    return case.name.split("-", 1)[0]


def case_args(case: Path) -> list[str]:
    return [line for line in (case / "args").read_text().splitlines() if line]


def cfn_lint(text: str) -> list:
    from cfnlint.api import ManualArgs, lint

    return lint(text, config=ManualArgs(regions=["us-east-1"]))


def validate_register_input(td: dict) -> None:
    """Raises botocore's ParamValidationError unless td is valid RegisterTaskDefinition input."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(td, shape)
    if report.has_errors():
        from botocore.exceptions import ParamValidationError

        raise ParamValidationError(report=report.generate_report())


def load_yaml_all(text: str) -> list:
    """Plain Python data (no ruamel types) of every YAML document, short-form tags as long form."""
    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)

    def multi(loader, suffix, node):
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
        if isinstance(node, ScalarNode):
            value = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    from ruamel.yaml.constructor import SafeConstructor

    class Constructor(SafeConstructor):
        """Our own class: add_multi_constructor changes the class it is called on."""

    Constructor.add_multi_constructor("!", multi)
    y.Constructor = Constructor
    return [d for d in y.load_all(text) if d is not None]


def parse_json(text: str):
    return json.loads(text)

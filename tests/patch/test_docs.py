"""docs/deploy.md stays true to the code: every option it names exists, the macro's
parameter list is the handler's, and the macro template is valid CloudFormation."""
from __future__ import annotations

import re
from pathlib import Path

import patch_helpers as h

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_documented_patch_option_exists():
    text = (DOCS / "deploy.md").read_text()
    helps = "".join(h.run_cli(["patch", kind, "--help"])[1] for kind in ("cfn", "taskdef", "k8s"))
    documented = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))
    docker_flags = {"--cap-add", "--from", "--cli-input-json", "--task-definition", "--include", "--stack-name",
                    "--template-file", "--capabilities", "--parameter-overrides", "--python", "--out",
                    "--library-path", "--uid", "--name", "--rm", "--user", "--volumes-from",
                    }  # commands of other tools shown in the docs
    missing = sorted(o for o in documented - docker_flags if o not in helps)
    assert missing == []


def test_documented_macro_parameters_are_the_handlers():
    from workload_agent.patch.cfn_macro import PARAMETERS

    text = (DOCS / "deploy.md").read_text()
    block = text[text.index("Known parameters:"):text.index("An\nunknown parameter")]
    assert set(re.findall(r"`(\w+)`", block)) == set(PARAMETERS)


def test_macro_template_lints_clean():
    assert [str(m) for m in h.cfn_lint((DOCS / "cfn-macro.yaml").read_text())] == []
    template = h.load_yaml_all((DOCS / "cfn-macro.yaml").read_text())[0]
    fn = template["Resources"]["MacroFunction"]["Properties"]
    assert fn["Handler"] == "workload_agent.patch.cfn_macro.handler"

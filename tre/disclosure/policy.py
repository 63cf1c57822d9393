"""Disclosure policies: the rules' parameters, from YAML presets validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tre.errors import InvalidInput, NotFound

# The presets ship in the repository's policies/disclosure folder.
PRESET_DIR = Path(__file__).resolve().parents[2] / "policies" / "disclosure"

FlagStatus = Literal["review", "fail"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class NKRule(_Strict):
    """Dominance (n,k): a cell fails when its n largest contributions are ≥ k of its total."""

    n: int = Field(ge=1, description="how many of the largest contributions are added up")
    k: float = Field(gt=0, le=1, description="share of the total (0..1) that fails")


class PPercentRule(_Strict):
    """p%: a cell fails when (total − x1 − x2) / x1 < p."""

    p: float = Field(gt=0, le=1, description="fraction (0..1) of the largest contribution")


class MinMaxRule(_Strict):
    """A published minimum or maximum is a single record's value unless enough records share it."""

    status: FlagStatus = "review"
    min_holders: int | None = Field(
        default=None, ge=1, description="records that must share the extreme (null: threshold)"
    )


class ModeRule(_Strict):
    """A mode discloses when (almost) everyone has it, or when too few records hold it."""

    status: FlagStatus = "review"
    max_share: float = Field(default=1.0, gt=0, le=1, description="modal share that is flagged")
    min_holders: int = Field(default=2, ge=1, description="records that must share the mode")


class DifferencingRule(_Strict):
    """Nested published sets whose difference isolates 1..threshold−1 records fail."""

    threshold: int | None = Field(default=None, ge=1, description="null: the policy threshold")


class RegressionRule(_Strict):
    """Models: minimum residual degrees of freedom and (DataSHIELD) a parameter ratio."""

    min_dof: int | None = Field(default=10, ge=0)
    max_param_ratio: float | None = Field(
        default=None, gt=0, le=1, description="fail when rank > ratio × n_obs (nfilter.glm)"
    )


class SuppressionRule(_Strict):
    """Secondary suppression: how wide an attacker's interval for a suppressed cell must be."""

    protection_level: float = Field(
        default=0.1, ge=0, le=10, description="required ± width as a fraction of the cell value"
    )


class RoundingRule(_Strict):
    """Rounding scheme applied by `round_table` / `protect_table`."""

    scheme: Literal["base", "ons_10_5", "opensafely", "midpoint6"]
    base: int = Field(default=5, ge=1)
    half: Literal["up", "even"] = "up"

    @model_validator(mode="after")
    def _midpoint_base(self) -> RoundingRule:
        if self.scheme == "midpoint6" and self.base != 6:
            raise ValueError("scheme midpoint6 needs base 6")
        return self


class DisclosurePolicy(_Strict):
    """Every parameter of the disclosure rules; a null rule is switched off."""

    name: str = Field(min_length=1)
    description: str = ""
    source: str = ""
    threshold: int = Field(ge=1, description="cells need at least this many contributors")
    zeros_are_disclosive: bool = True
    refuse_table: bool = Field(
        default=False, description="DataSHIELD: one failing cell withholds the whole table"
    )
    nk: NKRule | None = None
    p_percent: PPercentRule | None = None
    dof: int | None = Field(default=10, ge=0, description="std cells need n − 1 ≥ dof")
    regression: RegressionRule = RegressionRule()
    check_missing_values: bool = False
    negative: FlagStatus = "review"
    min_max: MinMaxRule | None = MinMaxRule()
    mode: ModeRule | None = ModeRule()
    differencing: DifferencingRule = DifferencingRule()
    suppression: SuppressionRule = SuppressionRule()
    rounding: RoundingRule | None = None

    @property
    def differencing_threshold(self) -> int:
        """The differencing threshold in force."""
        return self.differencing.threshold or self.threshold

    @property
    def min_max_holders(self) -> int:
        """How many records must share a published extreme."""
        assert self.min_max is not None
        return self.min_max.min_holders or self.threshold


def policy_from_mapping(data: Any, *, source: str = "<policy>") -> DisclosurePolicy:
    """Validate a mapping as a policy; errors name the source and the offending key."""
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{source}: a disclosure policy must be a mapping, got {type(data).__name__}",
            hint="see policies/disclosure/acro.yaml for the layout",
        )
    try:
        return DisclosurePolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise InvalidInput(
            f"{source}: key {key}: {first['msg']}",
            hint="fix the key named; the known keys and types are in docs/disclosure.md",
            details={"file": source, "problems": problems},
        ) from None


def load_policy(path: str | Path) -> DisclosurePolicy:
    """Load and validate a disclosure policy YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(
            f"disclosure policy file {path} does not exist",
            hint="give the path of a YAML file, or a preset name to load_preset()",
        ) from None
    return _policy_from_yaml(text, source=str(path))


def _policy_from_yaml(text: str, *, source: str) -> DisclosurePolicy:
    """Parse and validate policy YAML; errors name `source` (a path, or a preset's name)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InvalidInput(
            f"{source}:{where} is not valid YAML", hint="check indentation and quoting"
        ) from None
    return policy_from_mapping(data, source=source)


def preset_names(directory: Path | None = None) -> tuple[str, ...]:
    """The names of the presets available."""
    return tuple(sorted(p.stem for p in (directory or PRESET_DIR).glob("*.yaml")))


def load_preset(name: str, *, directory: Path | None = None) -> DisclosurePolicy:
    """Load a named preset ("acro", "ons", "opensafely", "datashield", …)."""
    folder = directory or PRESET_DIR
    path = folder / f"{name}.yaml"
    # Messages name the preset, never the folder: they reach researchers, who must not learn
    # the server's paths.
    if "/" in name or "\\" in name or not path.is_file():
        available = ", ".join(preset_names(folder)) or "(none)"
        raise NotFound(
            f"no disclosure preset named {name[:100]!r}; the available presets are: {available}",
            hint=f"Choose one of the available presets: {available}.",
        )
    return _policy_from_yaml(path.read_text(encoding="utf-8"), source=f"preset {name!r}")

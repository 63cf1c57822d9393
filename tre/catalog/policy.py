"""Dataset policies: what every raw column is, how ingest treats it, what the query layer may do.

A policy is `policies/datasets/<name>.yaml` (contract: docs/datasets.md), validated here by
pydantic. Every error names the file and the dotted key, e.g.
`policies/datasets/health.yaml: columns.cost.bounds: lower bound 10 is above upper bound 5`.

Generalisation rules form a registry (`RULES`): one pydantic model per rule with its parameters,
the raw types it accepts and the type it produces. Ingest turns each rule into SQL; the catalog
only describes them.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from tre.errors import InvalidInput

ColumnClass = Literal["direct_identifier", "person_identifier", "quasi_identifier", "attribute"]
ColumnType = Literal["string", "integer", "float", "boolean", "date", "category"]
GroupBy = Literal["public", "threshold", "forbidden"]

NUMERIC_TYPES: frozenset[str] = frozenset({"integer", "float"})
TEXT_TYPES: frozenset[str] = frozenset({"string", "category"})
DEFAULT_SCALE = 100
DEFAULT_PSEUDONYM_COLUMN = "pid"
RANK_COLUMN = "_tre_rank"
# Output names starting with this prefix are tre's own columns.
RESERVED_PREFIX = "_tre"

_NAME = r"^[a-z][a-z0-9_]*$"
_COLUMN = r"^[A-Za-z_][A-Za-z0-9_]*$"


_DEFAULT_HINT = "Fix the policy file (contract: docs/datasets.md) and run the command again."


class PolicyError(InvalidInput):
    """A dataset policy file is malformed; the message names the file and the key."""

    def __init__(self, path: str, key: str, problem: str, *, hint: str | None = None):
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(
            f"{where}{problem}",
            reason="invalid_policy",
            hint=hint or _DEFAULT_HINT,
            details={"file": path, "key": key},
        )
        self.path = path
        self.key = key
        self.problem = problem


class KeyedValueError(ValueError):
    """A validation problem that belongs to a sub-key of the model being validated."""

    def __init__(self, key: str, problem: str):
        super().__init__(problem)
        self.key = key
        self.problem = problem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- generalisation rules -------------------------------------------------------------------


class _Rule(_Strict):
    """Common parts of every generalisation rule."""

    input_types: ClassVar[frozenset[str]] = frozenset()
    summary: ClassVar[str] = ""
    output: str | None = Field(
        default=None, pattern=_COLUMN, description="Output column name (default: the raw name)."
    )

    def output_type(self, input_type: str) -> str:
        """The type of the generalised column, given the raw column's type."""
        return input_type


class YearRule(_Rule):
    """Date → integer year."""

    input_types: ClassVar[frozenset[str]] = frozenset({"date"})
    summary: ClassVar[str] = "date → integer year"
    rule: Literal["year"] = "year"

    def output_type(self, input_type: str) -> str:
        """Years are integers."""
        return "integer"


class YearMonthRule(_Rule):
    """Date → `YYYY-MM`."""

    input_types: ClassVar[frozenset[str]] = frozenset({"date"})
    summary: ClassVar[str] = "date → YYYY-MM"
    rule: Literal["year_month"] = "year_month"

    def output_type(self, input_type: str) -> str:
        """Year-months are category labels."""
        return "category"


class AgeBandRule(_Rule):
    """Date of birth → age band label (`30-34`, top band `90+`) at a reference date."""

    input_types: ClassVar[frozenset[str]] = frozenset({"date"})
    summary: ClassVar[str] = "date of birth → age band at reference_date, width years"
    rule: Literal["age_band"] = "age_band"
    reference_date: dt.date
    width: int = Field(default=5, ge=1, le=50)
    top: int | None = Field(default=None, ge=1, le=150, description="Ages ≥ top form one band.")

    @model_validator(mode="after")
    def _top_on_band_edge(self) -> AgeBandRule:
        if self.top is not None and self.top % self.width:
            raise KeyedValueError(
                "top", f"top {self.top} must be a multiple of width {self.width} (a band edge)"
            )
        return self

    def output_type(self, input_type: str) -> str:
        """Age bands are category labels."""
        return "category"

    def labels(self) -> list[str]:
        """The band labels this rule can produce (a public category list), if it has a top."""
        if self.top is None:
            return []
        out = [f"{lo}-{lo + self.width - 1}" for lo in range(0, self.top, self.width)]
        return [*out, f"{self.top}+"]


class PostcodeDistrictRule(_Rule):
    """`LS6 2AB` → `LS6` (the outward code)."""

    input_types: ClassVar[frozenset[str]] = frozenset({"string", "category"})
    summary: ClassVar[str] = "postcode → district (outward code)"
    rule: Literal["postcode_district"] = "postcode_district"

    def output_type(self, input_type: str) -> str:
        """Districts are category labels."""
        return "category"


class PostcodeAreaRule(_Rule):
    """`LS6 2AB` → `LS` (the leading letters)."""

    input_types: ClassVar[frozenset[str]] = frozenset({"string", "category"})
    summary: ClassVar[str] = "postcode → area (leading letters)"
    rule: Literal["postcode_area"] = "postcode_area"

    def output_type(self, input_type: str) -> str:
        """Areas are category labels."""
        return "category"


class RareToOtherRule(_Rule):
    """Categories held by fewer than `min_count` people in the extract → `other`."""

    input_types: ClassVar[frozenset[str]] = frozenset({"string", "category"})
    summary: ClassVar[str] = "categories with fewer than min_count people → other"
    rule: Literal["rare_to_other"] = "rare_to_other"
    min_count: int = Field(default=10, ge=1)
    other: str = Field(default="other", min_length=1)


class KeepRule(_Rule):
    """No change, for quasi-identifiers that are already coarse."""

    input_types: ClassVar[frozenset[str]] = frozenset(
        {"string", "integer", "float", "boolean", "date", "category"}
    )
    summary: ClassVar[str] = "no change"
    rule: Literal["keep"] = "keep"


RULES: dict[str, type[_Rule]] = {
    "year": YearRule,
    "year_month": YearMonthRule,
    "age_band": AgeBandRule,
    "postcode_district": PostcodeDistrictRule,
    "postcode_area": PostcodeAreaRule,
    "rare_to_other": RareToOtherRule,
    "keep": KeepRule,
}


def _rule_tag(value: Any) -> str | None:
    rule = value.get("rule") if isinstance(value, dict) else getattr(value, "rule", None)
    return rule if isinstance(rule, str) and rule in RULES else None


Generalisation = Annotated[
    Annotated[YearRule, Tag("year")]
    | Annotated[YearMonthRule, Tag("year_month")]
    | Annotated[AgeBandRule, Tag("age_band")]
    | Annotated[PostcodeDistrictRule, Tag("postcode_district")]
    | Annotated[PostcodeAreaRule, Tag("postcode_area")]
    | Annotated[RareToOtherRule, Tag("rare_to_other")]
    | Annotated[KeepRule, Tag("keep")],
    Discriminator(
        _rule_tag,
        custom_error_type="unknown_rule",
        custom_error_message="unknown generalisation rule",
    ),
]


# --- columns ----------------------------------------------------------------------------------


class ColumnPolicy(_Strict):
    """How one raw column is classified, typed, transformed and later queried."""

    column_class: ColumnClass = Field(alias="class")
    type: ColumnType
    nullable: bool = False
    description: str | None = None
    output: str | None = Field(default=None, pattern=_COLUMN)
    generalise: Generalisation | None = None
    bounds: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    group_by: GroupBy | None = None
    allow_quantiles: bool | None = None
    scale: int | None = Field(default=None, ge=1, le=10**9)

    @field_validator("bounds", mode="before")
    @classmethod
    def _bounds_shape(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError("bounds must be a list of two numbers: [lower, upper]")
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError("bounds must be a list of two numbers: [lower, upper]")
        return value

    @field_validator("bounds")
    @classmethod
    def _bounds_order(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"lower bound {_num(value[0])} is above upper bound {_num(value[1])}")
        return value

    @field_validator("categories", mode="before")
    @classmethod
    def _categories_text(cls, value: Any) -> Any:
        # YAML reads `[I, II, 1]` as mixed types; categories are labels, so keep them as text.
        if isinstance(value, list | tuple):
            return tuple(
                str(v).lower() if isinstance(v, bool) else str(v) for v in value if v is not None
            )
        return value

    @field_validator("categories")
    @classmethod
    def _categories_unique(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            if not value:
                raise ValueError("a public category list must not be empty")
            seen: set[str] = set()
            dups = sorted({v for v in value if v in seen or seen.add(v)})  # type: ignore[func-returns-value]
            if dups:
                raise ValueError(f"categories are listed twice: {', '.join(dups)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ColumnPolicy:
        cls_ = self.column_class
        if cls_ == "quasi_identifier" and self.generalise is None:
            raise KeyedValueError(
                "generalise",
                "a quasi_identifier needs a generalisation rule "
                f"(one of: {', '.join(RULES)}; use `keep` if it is already coarse)",
            )
        if cls_ != "quasi_identifier" and self.generalise is not None:
            raise KeyedValueError(
                "generalise", f"only quasi_identifier columns are generalised, not {cls_}"
            )
        if self.output is not None and cls_ != "person_identifier":
            where = "generalise.output" if cls_ == "quasi_identifier" else "the raw column name"
            raise KeyedValueError(
                "output", f"`output` is for person_identifier columns; a {cls_} uses {where}"
            )
        if self.generalise is not None and self.type not in type(self.generalise).input_types:
            rule = type(self.generalise)
            raise KeyedValueError(
                "generalise.rule",
                f"rule {self.generalise.rule!r} ({rule.summary}) needs a column of type "
                f"{' or '.join(sorted(rule.input_types))}, not {self.type}",
            )
        if cls_ in ("direct_identifier", "person_identifier"):
            for key in ("bounds", "categories", "group_by", "allow_quantiles", "scale"):
                if getattr(self, key) is not None:
                    raise KeyedValueError(
                        key, f"a {cls_} is never released, so it takes no `{key}`"
                    )
            return self
        out_type = self.output_type
        if self.bounds is not None and out_type not in NUMERIC_TYPES:
            raise KeyedValueError("bounds", f"only numeric columns have bounds, not {out_type}")
        if self.categories is not None and out_type not in TEXT_TYPES:
            raise KeyedValueError(
                "categories", f"only category or string columns list categories, not {out_type}"
            )
        if self.scale is not None and out_type != "float":
            raise KeyedValueError("scale", f"`scale` is for float columns, not {out_type}")
        if self.allow_quantiles and self.bounds is None:
            raise KeyedValueError(
                "allow_quantiles", "quantiles need `bounds` on this numeric column"
            )
        if self.group_by == "public" and not self.public_categories and out_type != "boolean":
            raise KeyedValueError(
                "group_by",
                "`group_by: public` needs a public `categories` list "
                "(or use `threshold` to release only keys with enough people)",
            )
        return self

    # Derived, effective values (what ingest writes and the query layer reads).

    @property
    def is_dropped(self) -> bool:
        """Direct identifiers are dropped at ingest."""
        return self.column_class == "direct_identifier"

    @property
    def output_type(self) -> str:
        """The type of the published column."""
        if self.generalise is not None:
            return self.generalise.output_type(self.type)
        if self.column_class == "person_identifier":
            return "string"
        return self.type

    @property
    def public_categories(self) -> tuple[str, ...] | None:
        """The public category list of the published column, explicit or implied by the rule."""
        if self.categories is not None:
            return self.categories
        if isinstance(self.generalise, AgeBandRule) and self.generalise.top is not None:
            return tuple(self.generalise.labels())
        return None

    @property
    def effective_group_by(self) -> GroupBy:
        """`group_by` with the documented defaults filled in."""
        if self.column_class in ("direct_identifier", "person_identifier"):
            return "forbidden"
        if self.group_by is not None:
            return self.group_by
        if self.public_categories is not None or self.output_type == "boolean":
            return "public"
        if self.output_type == "float":
            return "forbidden"
        return "threshold"

    @property
    def effective_allow_quantiles(self) -> bool:
        """Quantiles default to allowed on bounded numeric columns."""
        if self.allow_quantiles is not None:
            return self.allow_quantiles
        return self.bounds is not None and self.output_type in NUMERIC_TYPES

    @property
    def effective_scale(self) -> int | None:
        """Fixed-point factor for float sums (default 100); None for other types."""
        if self.output_type != "float":
            return None
        return self.scale if self.scale is not None else DEFAULT_SCALE


# --- the policy -------------------------------------------------------------------------------


class DatasetPolicy(_Strict):
    """One dataset's policy: metadata, the custodian key, the privacy unit and every column."""

    name: str = Field(pattern=_NAME, max_length=63)
    title: str = Field(min_length=1)
    description: str = ""
    custodian: str = Field(min_length=1)
    contact: str = Field(min_length=1)
    licence: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()
    key: str = Field(pattern=_NAME, max_length=63)
    privacy_unit: str = Field(pattern=_COLUMN)
    contribution_limit: int = Field(ge=1, le=100_000)
    columns: dict[str, ColumnPolicy] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _column_names(cls, value: dict[str, ColumnPolicy]) -> dict[str, ColumnPolicy]:
        for raw in value:
            if not re.match(_COLUMN, raw):
                raise KeyedValueError(
                    raw,
                    "column names are letters, digits and underscores, not starting with a digit",
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DatasetPolicy:
        unit = self.columns.get(self.privacy_unit)
        if unit is None:
            raise KeyedValueError(
                "privacy_unit", f"{self.privacy_unit!r} is not one of the policy's columns"
            )
        if unit.column_class != "person_identifier":
            raise KeyedValueError(
                "privacy_unit",
                f"{self.privacy_unit!r} must have class person_identifier, not {unit.column_class}",
            )
        seen: dict[str, str] = {}
        for raw in self.columns:
            out = self.output_name(raw)
            if out is None:
                continue
            key = f"columns.{raw}"
            if out.lower().startswith(RESERVED_PREFIX):
                raise KeyedValueError(key, f"output name {out!r} is reserved for tre's own columns")
            if out.lower() in seen:
                raise KeyedValueError(
                    key,
                    f"output column {out!r} is also produced by columns.{seen[out.lower()]}; "
                    "give one of them another output name",
                )
            seen[out.lower()] = raw
        return self

    def output_name(self, raw: str) -> str | None:
        """The published name of raw column `raw` (None when it is dropped)."""
        col = self.columns[raw]
        if col.column_class == "direct_identifier":
            return None
        if col.column_class == "person_identifier":
            return col.output or DEFAULT_PSEUDONYM_COLUMN
        if col.generalise is not None and col.generalise.output:
            return col.generalise.output
        return raw

    @property
    def pseudonym_column(self) -> str:
        """The published column holding the privacy unit's pseudonym."""
        name = self.output_name(self.privacy_unit)
        assert name is not None  # person identifiers always have an output
        return name

    def policy_hash(self) -> str:
        """sha256 of the policy's canonical JSON (stable across YAML formatting)."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


# --- loading ----------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _dotted(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        # Discriminated unions put the tag into the location; a person never wrote it.
        if parts and parts[-1] == "generalise" and isinstance(item, str) and item in RULES:
            continue
        if isinstance(item, int) and i > 0:
            parts[-1] = f"{parts[-1]}[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _describe(err: dict[str, Any], data: Any) -> tuple[str, str, str | None]:
    """(key, problem, hint) for one pydantic error."""
    loc = tuple(err["loc"])
    key = _dotted(loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    exc = ctx.get("error")
    if isinstance(exc, KeyedValueError):
        key = f"{key}.{exc.key}" if key else exc.key
        return key, exc.problem, None
    if kind == "extra_forbidden":
        name = str(loc[-1])
        known = _known_keys(loc[:-1], data)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"Did you mean `{close[0]}`?" if close else f"Known keys here: {', '.join(known)}."
        return key, "unknown key", hint
    if kind == "unknown_rule":
        rule = _lookup(data, loc)
        rule_name = rule.get("rule") if isinstance(rule, dict) else None
        close = difflib.get_close_matches(str(rule_name), list(RULES), n=1)
        problem = (
            f"unknown generalisation rule {rule_name!r}"
            if rule_name is not None
            else "a generalisation needs a `rule`"
        )
        hint = f"Known rules: {', '.join(RULES)}." + (
            f" Did you mean `{close[0]}`?" if close else ""
        )
        return f"{key}.rule", problem, hint
    if kind == "missing":
        return key, "required key is missing", None
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    return key, msg, None


def _lookup(data: Any, loc: tuple[int | str, ...]) -> Any:
    cur = data
    for item in loc:
        in_dict = isinstance(cur, dict) and item in cur
        in_list = isinstance(cur, list) and isinstance(item, int) and item < len(cur)
        if in_dict or in_list:
            cur = cur[item]
        else:
            return None
    return cur


def _known_keys(loc: tuple[int | str, ...], data: Any) -> list[str]:
    loc = tuple(x for i, x in enumerate(loc) if not (i == 3 and x in RULES))
    model: type[BaseModel] = DatasetPolicy
    if len(loc) >= 2 and loc[0] == "columns":
        model = ColumnPolicy
        if len(loc) >= 3 and loc[2] == "generalise":
            node = _lookup(data, loc)
            rule = node.get("rule") if isinstance(node, dict) else None
            model = RULES.get(str(rule), _Rule)
    return sorted((f.alias or n) for n, f in model.model_fields.items())


def parse_policy(data: Any, source: str) -> DatasetPolicy:
    """Validate already-parsed policy data; errors name `source` and the key."""
    if not isinstance(data, dict):
        raise PolicyError(source, "", "a dataset policy must be a YAML mapping of keys to values")
    try:
        return DatasetPolicy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        key, problem, hint = _describe(dict(errors[0]), data)
        err = PolicyError(source, key, problem, hint=hint)
        err.details["errors"] = [
            {"key": k, "problem": p} for k, p, _ in (_describe(dict(e), data) for e in errors)
        ]
        raise err from None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_policy_yaml(p: Path, shown: str, kind: str, missing_hint: str) -> Any:
    """The YAML document of a policy file (duplicate keys refused); every failure is a
    PolicyError naming the file, and the line and column where YAML says so."""
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(shown, "", f"no such {kind} file", hint=missing_hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(
            shown, "", f"cannot read the {kind} file ({type(exc).__name__})"
        ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = exc.problem or exc.context or "invalid YAML"
        raise PolicyError(shown, "", f"{where}: {problem}", hint="Fix the YAML syntax.") from None
    except yaml.YAMLError:
        raise PolicyError(shown, "", "invalid YAML", hint="Fix the YAML syntax.") from None


def check_file_name(p: Path, shown: str, kind: str, name: str) -> None:
    """A policy or lookup file must be named after what it defines (`<name>.yaml`)."""
    if name != p.stem:
        raise PolicyError(
            shown,
            "name",
            f"the {kind} name {name!r} differs from the file name {p.stem!r}",
            hint=f"Rename the file to {name}.yaml or set `name: {p.stem}`.",
        )


def load_policy(path: str | Path) -> DatasetPolicy:
    """Read and validate a dataset policy YAML file."""
    p = Path(path)
    shown = _display(p)
    data = read_policy_yaml(p, shown, "policy", "Write policies/datasets/<name>.yaml first.")
    policy = parse_policy(data, shown)
    check_file_name(p, shown, "dataset", policy.name)
    return policy


def load_policies(policy_dir: str | Path) -> dict[str, DatasetPolicy]:
    """Every dataset policy in `<policy_dir>/datasets/*.yaml`, by dataset name."""
    folder = Path(policy_dir) / "datasets"
    return {p.stem: load_policy(p) for p in sorted(folder.glob("*.yaml"))}

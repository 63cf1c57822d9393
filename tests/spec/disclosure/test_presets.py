"""Chapter 12 — presets: each file in policies/disclosure loads and carries its source's
parameters."""

from __future__ import annotations

from tre.disclosure import load_preset, preset_names


def test_every_preset_loads() -> None:
    assert set(preset_names()) >= {
        "acro",
        "ons",
        "opensafely",
        "opensafely-midpoint6",
        "datashield",
    }
    for name in preset_names():
        assert load_preset(name).name == name


def test_acro_preset_is_acro_default_yaml() -> None:
    p = load_preset("acro")
    assert (p.threshold, p.nk.n, p.nk.k, p.p_percent.p, p.dof) == (10, 2, 0.9, 0.1, 10)  # type: ignore[union-attr]
    assert p.zeros_are_disclosive and not p.check_missing_values
    assert p.regression.min_dof == 10 and p.rounding is None


def test_source_presets() -> None:
    ons, osf, ds = load_preset("ons"), load_preset("opensafely"), load_preset("datashield")
    assert ons.threshold == 10 and ons.rounding and ons.rounding.scheme == "ons_10_5"
    assert (
        osf.threshold == 8
        and osf.rounding
        and (osf.rounding.scheme, osf.rounding.base)
        == (
            "opensafely",
            5,
        )
    )
    assert load_preset("opensafely-midpoint6").rounding.scheme == "midpoint6"  # type: ignore[union-attr]
    assert (ds.threshold, ds.refuse_table, ds.zeros_are_disclosive) == (3, True, False)
    assert ds.regression.max_param_ratio == 0.33

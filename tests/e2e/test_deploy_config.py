"""The Kubernetes deployment files: notebooks reach only the tre API; the hub uses tre's classes."""

from __future__ import annotations

import importlib

import yaml

from tests.e2e.stack import REPO
from tre.hub.workspace import LAB_OVERRIDES

K8S = REPO / "deploy" / "kubernetes"


def test_notebook_egress_is_only_the_tre_api_the_hub_and_dns() -> None:
    policy = yaml.safe_load((K8S / "networkpolicy.yaml").read_text())
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == {"component": "singleuser-server"}
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    allowed = set()
    for rule in spec["egress"]:
        assert rule["to"], "an egress rule without peers would allow every destination"
        for peer in rule["to"]:
            assert "ipBlock" not in peer  # no internet ranges
            allowed.add(tuple(sorted(peer["podSelector"]["matchLabels"].items())))
        assert rule["ports"]
    assert allowed == {
        (("app.kubernetes.io/name", "tre-api"),),
        (("component", "hub"),),
        (("k8s-app", "kube-dns"),),
    }


def test_hub_values_use_tres_authenticator_and_switch_lab_calls_off() -> None:
    values = yaml.safe_load((K8S / "jupyterhub-values.yaml").read_text())
    cls = values["hub"]["config"]["JupyterHub"]["authenticator_class"]
    module, _, name = cls.rpartition(".")
    assert hasattr(importlib.import_module(module), name)
    assert values["hub"]["config"]["Authenticator"]["enable_auth_state"] is True
    lab = values["singleuser"]["extraFiles"]["lab-offline"]["data"]
    assert lab["ServerApp"]["terminals_enabled"] is False
    assert lab["LabApp"]["news_url"] is None
    # The same JupyterLab settings override as the embedded workspace env (tre.hub.workspace).
    news = values["singleuser"]["extraFiles"]["lab-news-off"]
    assert news["mountPath"] == lab["LabApp"]["app_settings_dir"] + "/overrides.json"
    assert news["data"] == LAB_OVERRIDES
    assert values["singleuser"]["networkPolicy"]["enabled"] is False  # ours replaces it
    assert values["cull"]["enabled"] is True
    compile(values["hub"]["extraConfig"]["tre-project-chooser"], "extraConfig", "exec")

"""The register as a fideslang document, checked with fideslang's own models and default taxonomy."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fideslang.default_taxonomy import DEFAULT_TAXONOMY
from fideslang.models import Taxonomy
from fideslang.relationships import get_referenced_missing_keys

from dpa import fideslang, register
from dpa.workspace import Workspace
from tests.conftest import Run

Cli = Callable[..., Run]

DEFAULT_CATEGORIES = {c.fides_key for c in DEFAULT_TAXONOMY.data_category}
DEFAULT_SUBJECTS = {s.fides_key for s in DEFAULT_TAXONOMY.data_subject}
DEFAULT_USES = {u.fides_key for u in DEFAULT_TAXONOMY.data_use}


def _custom_register() -> register.Register:
    """The default register plus a category and a subject dpa has no fideslang mapping for."""
    doc = copy.deepcopy(dict(register.default_register().document))
    doc["data_categories"].append({"id": "sms", "name": "Text messages"})
    doc["subject_categories"].append({"id": "reseller", "name": "Resellers' staff"})
    messaging = next(a for a in doc["activities"] if a["id"] == "messaging")
    messaging["data_categories"].append("sms")
    messaging["subject_categories"].append("reseller")
    return register.from_document(doc, "test register")


def _check(reg: register.Register) -> dict[str, Any]:
    """Validate the export with fideslang and check every label it uses is defined."""
    doc = fideslang.document(reg)
    taxonomy = Taxonomy.model_validate(doc)
    custom = {c.fides_key: c for c in taxonomy.data_category}
    for key, category in custom.items():
        assert not category.is_default
        assert key not in DEFAULT_CATEGORIES, f"{key} redefines a default key"
        assert category.parent_key in DEFAULT_CATEGORIES, key
        assert key.rpartition(".")[0] == category.parent_key
    known_categories = DEFAULT_CATEGORIES | set(custom)
    known_subjects = DEFAULT_SUBJECTS | {s.fides_key for s in taxonomy.data_subject}
    for declaration in taxonomy.system[0].privacy_declarations:
        assert set(declaration.data_categories) <= known_categories
        assert set(declaration.data_subjects) <= known_subjects
        assert declaration.data_use in DEFAULT_USES
    for collection in taxonomy.dataset[0].collections:
        assert set(collection.data_subjects or ()) <= known_subjects
        assert set(collection.data_uses or ()) <= DEFAULT_USES
        for field in collection.fields:
            assert set(field.data_categories or ()) <= known_categories
    # fideslang's own reference check, against the default taxonomy merged with the export.
    merged = Taxonomy(
        data_category=[*DEFAULT_TAXONOMY.data_category, *taxonomy.data_category],
        data_subject=[*DEFAULT_TAXONOMY.data_subject, *taxonomy.data_subject],
        data_use=DEFAULT_TAXONOMY.data_use,
        organization=DEFAULT_TAXONOMY.organization,
        dataset=taxonomy.dataset,
        system=taxonomy.system,
    )
    assert get_referenced_missing_keys(merged) == set()
    return doc


def test_export_validates_with_fideslang_models() -> None:
    reg = register.default_register()
    doc = _check(reg)
    assert list(doc) == ["data_category", "data_subject", "dataset", "system"]
    text = fideslang.render(reg)
    assert text.startswith("# fideslang document")
    assert reg.sha256 in text
    assert "&id" not in text  # no YAML anchors: every list written in full
    assert yaml.safe_load(text) == doc
    Taxonomy.model_validate(yaml.safe_load(text))


def test_every_activity_is_a_privacy_declaration() -> None:
    reg = register.default_register()
    system = fideslang.document(reg)["system"][0]
    declarations = {d["name"]: d for d in system["privacy_declarations"]}
    assert len(declarations) == len(reg.activities)
    for activity in reg.activities:
        declaration = declarations[activity.name]
        assert declaration["data_categories"] == [
            k for c in activity.data_categories for k in fideslang.category_keys(c)
        ]
        assert declaration["retention_period"] == str(activity.retention)
        assert declaration["dataset_references"] == [fideslang.DATASET_KEY]
        assert not declaration["flexible_legal_basis_for_processing"]
        assert set(system["meta"]["activities"][activity.id]["data_categories"]) == set(
            activity.data_categories
        )
    by_id = {a.id: declarations[a.name] for a in reg.activities}
    assert by_id["identity_check"]["legal_basis_for_processing"] == "Legal obligations"
    assert by_id["identity_check"]["data_use"] == "essential.legal_obligation"
    assert by_id["security_logs"]["legal_basis_for_processing"] == "Legitimate interests"
    assert by_id["security_logs"]["data_use"] == "essential.service.security"
    assert by_id["call_history"]["legal_basis_for_processing"] == "Contract"
    assert "Competent authorities (authority, BE)" in by_id["call_history"]["third_parties"]
    assert by_id["messaging"]["data_subjects"] == ["call_party", "employee"]
    assert by_id["account"]["data_subjects"] == ["customer", "employee"]
    assert system["legal_name"] == reg.provider.name
    assert system["dpo"] == str(reg.provider.dpo)
    assert system["responsibility"] == ["Controller", "Processor"]


def test_every_category_maps_to_a_default_or_declared_key() -> None:
    reg = register.default_register()
    doc = fideslang.document(reg)
    declared = {c["fides_key"]: c for c in doc["data_category"]}
    for category in reg.data_categories:
        keys = fideslang.category_keys(category)
        assert keys, category
        for key in keys:
            if key not in DEFAULT_CATEGORIES:
                assert key in declared, f"{category} -> {key}: neither default nor declared"
                assert declared[key]["parent_key"] in DEFAULT_CATEGORIES
    # Where fideslang has the label, dpa uses it rather than inventing one.
    assert fideslang.category_keys("phone_number") == ("user.contact.phone_number",)
    assert fideslang.category_keys("email") == ("user.contact.email",)
    assert fideslang.category_keys("ip_address") == ("user.device.ip_address",)
    assert fideslang.category_keys("name_address") == ("user.name", "user.contact.address")
    assert "user.government_id.passport_number" in fideslang.category_keys("passport_photo")
    assert declared["user.behavior.call_detail_record"]["parent_key"] == "user.behavior"
    assert declared["user.content.private.voicemail"]["parent_key"] == "user.content.private"
    # Only the labels the register uses are declared.
    used = {k for c in reg.data_categories for k in fideslang.category_keys(c)}
    assert set(declared) <= used
    assert [s["fides_key"] for s in doc["data_subject"]] == ["call_party"]
    assert {"customer", "employee"} <= DEFAULT_SUBJECTS
    assert "call_party" not in DEFAULT_SUBJECTS


def test_dataset_has_a_collection_per_category_with_its_labels() -> None:
    reg = register.default_register()
    dataset = fideslang.document(reg)["dataset"][0]
    collections = {c["name"]: c for c in dataset["collections"]}
    assert set(collections) == set(reg.data_categories)
    for category, collection in collections.items():
        fields = {f["name"]: f for f in collection["fields"]}
        assert fields["payload"]["data_categories"] == list(fideslang.category_keys(category))
        assert fields["subject_a"]["data_categories"] == ["user.unique_id.pseudonymous"]
        assert fields["collected_at"]["data_categories"] == ["system.operations"]
        assert str(reg.activity_for(category).retention) in collection["description"]


def test_unmapped_category_and_subject_still_export_as_custom_labels() -> None:
    doc = _check(_custom_register())
    declared = {c["fides_key"]: c for c in doc["data_category"]}
    assert declared["user.dpa_sms"]["parent_key"] == "user"
    assert "review" in declared["user.dpa_sms"]["description"]
    assert "reseller" in {s["fides_key"] for s in doc["data_subject"]}
    messaging = next(
        d
        for d in doc["system"][0]["privacy_declarations"]
        if d["name"] == "Voicemail and fax delivery"
    )
    assert "user.dpa_sms" in messaging["data_categories"]
    assert "reseller" in messaging["data_subjects"]


def test_cli_writes_fideslang_yaml(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    out = cli("register", "export", "--format", "fideslang")
    doc = yaml.safe_load(out.stdout)
    Taxonomy.model_validate(doc)
    assert doc == fideslang.document(register.default_register())

    target = tmp_path / "fides.yml"
    run = cli("register", "export", "-f", "fideslang", "-o", str(target))
    assert run.stdout == ""
    assert f"wrote {target}" in run.stderr
    assert yaml.safe_load(target.read_text(encoding="utf-8")) == doc


def test_cli_refuses_an_unknown_format(ws: Workspace, cli: Cli) -> None:
    run = cli("register", "export", "--format", "fides", code=2)
    assert "fideslang" in run.stderr

"""The catalogue as DCAT-AP JSON-LD, so datasets can be discovered before anyone applies.

DCAT-AP is the metadata convention of the European Data Portal and data.gov.uk. The export
holds metadata only: titles, descriptions, custodians, versions, dates, keywords, the column
schema with classes, types, bounds and the public category lists written in the policies.
It never holds a row, a value seen in the data, a pseudonym, a checksum of an extract or the
ingest report (whose figures describe individual people, e.g. the most rows one person has).
"""

from __future__ import annotations

from typing import Any

from tre import __version__
from tre.catalog.catalog import Catalog, DatasetVersion
from tre.catalog.policy import DatasetPolicy

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "csvw": "http://www.w3.org/ns/csvw#",
    "adms": "http://www.w3.org/ns/adms#",
    "tre": "urn:x-tre:vocab#",
}
# EU Publications Office controlled vocabularies used by DCAT-AP.
ACCESS_RESTRICTED = "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
FILE_TYPE_PARQUET = "http://publications.europa.eu/resource/authority/file-type/PARQUET"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
_XSD = {
    "string": "xsd:string",
    "category": "xsd:string",
    "integer": "xsd:integer",
    "float": "xsd:double",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
}


def _text(value: str) -> dict[str, str]:
    return {"@value": value, "@language": "en"}


def _datetime(value: Any) -> dict[str, str]:
    return {"@value": value.isoformat(), "@type": "xsd:dateTime"}


def _column(c: Any) -> dict[str, Any]:
    col: dict[str, Any] = {
        "@type": "csvw:Column",
        "csvw:name": c.name,
        "csvw:datatype": _XSD.get(c.type, "xsd:string"),
        "csvw:required": not c.nullable,
        "tre:columnClass": c.column_class,
        "tre:groupBy": c.group_by,
    }
    if c.description:
        col["dct:description"] = _text(c.description)
    if c.source and c.source != c.name:
        col["tre:derivedFrom"] = c.source
    if c.generalisation:
        col["tre:generalisation"] = c.generalisation
    if c.bounds is not None:
        col["tre:minimum"], col["tre:maximum"] = c.bounds
    if c.categories:
        # Public category lists come from the policy, never from the data.
        col["tre:publicCategories"] = list(c.categories)
    return col


def dcat_dataset(versions: list[DatasetVersion], base_uri: str) -> dict[str, Any]:
    """One dcat:Dataset (the latest version's metadata) with a distribution per version."""
    latest = versions[-1]
    policy: DatasetPolicy = latest.policy
    base = base_uri.rstrip("/")
    ds_id = f"{base}/datasets/{latest.name}"
    schema_id = f"{ds_id}/v{latest.version}/schema"
    dataset: dict[str, Any] = {
        "@id": ds_id,
        "@type": "dcat:Dataset",
        "dct:identifier": latest.name,
        "dct:title": _text(policy.title),
        "dct:description": _text(policy.description or policy.title),
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": policy.custodian},
        "dcat:contactPoint": {
            "@type": "vcard:Organization",
            "vcard:fn": policy.custodian,
            "vcard:hasEmail": {"@id": f"mailto:{policy.contact}"}
            if "@" in policy.contact
            else policy.contact,
        },
        "dcat:keyword": [_text(k) for k in policy.keywords],
        "dct:issued": _datetime(versions[0].manifest.created_at),
        "dct:modified": _datetime(latest.manifest.created_at),
        "dcat:version": str(latest.version),
        "dct:accessRights": {"@id": ACCESS_RESTRICTED},
        "dct:license": {"@type": "dct:LicenseDocument", "rdfs:label": policy.licence},
        "dct:conformsTo": {
            "@id": schema_id,
            "@type": "csvw:Schema",
            "csvw:column": [_column(c) for c in latest.columns],
        },
        "tre:privacyUnit": f"person (keyed pseudonym column {latest.pseudonym_column})",
        "tre:contributionLimit": latest.contribution_limit,
        "dcat:distribution": [
            {
                "@id": f"{ds_id}/v{dv.version}",
                "@type": "dcat:Distribution",
                "dct:title": _text(f"{policy.title}, version {dv.version} (Parquet)"),
                "dct:description": _text(
                    "Pseudonymised Parquet inside the TRE; reachable only through approved "
                    "projects' aggregate queries."
                ),
                "dct:format": {"@id": FILE_TYPE_PARQUET},
                "dcat:mediaType": PARQUET_MEDIA_TYPE,
                "dcat:accessURL": {"@id": f"{ds_id}"},
                "dcat:byteSize": {
                    "@value": str(sum(f.bytes for f in dv.manifest.files)),
                    "@type": "xsd:nonNegativeInteger",
                },
                "dct:issued": _datetime(dv.manifest.created_at),
                "dct:conformsTo": {"@id": f"{ds_id}/v{dv.version}/schema"},
                "adms:status": {"@id": "http://purl.org/adms/status/Completed"},
                "dct:accessRights": {"@id": ACCESS_RESTRICTED},
            }
            for dv in reversed(versions)
        ],
    }
    return dataset


def dcat_catalog(
    catalog: Catalog, base_uri: str, *, title: str = "tre dataset catalogue"
) -> dict[str, Any]:
    """The whole catalogue as a DCAT-AP JSON-LD document (a dict ready for json.dumps)."""
    base = base_uri.rstrip("/")
    datasets = []
    modified = None
    for name in catalog.datasets():
        versions = [catalog.get(name, v) for v in catalog.versions(name)]
        datasets.append(dcat_dataset(versions, base))
        created = versions[-1].manifest.created_at
        modified = created if modified is None or created > modified else modified
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@id": f"{base}/catalog",
        "@type": "dcat:Catalog",
        "dct:title": _text(title),
        "dct:description": _text(
            "Datasets held in this Trusted Research Environment. Metadata only: access to "
            "the data is by approved project, through aggregate queries."
        ),
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": "tre"},
        "foaf:homepage": {"@id": base},
        "tre:software": f"tre {__version__}",
        "dcat:dataset": datasets,
    }
    if modified is not None:
        doc["dct:modified"] = _datetime(modified)
    return doc

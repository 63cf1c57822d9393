"""England's regions and a sample of local authorities with their postcode districts.

A public reference list: codes and names follow ONS (E06/E07/E08/E09 codes), populations are
2021 census figures rounded to thousands, `deprivation` (0 least … 1 most) and `diversity`
(share of people not White British, relative to England) are rough characterisations used only
to shape the synthetic population. Tiny authorities (City of London, Isles of Scilly, Rutland)
are kept on purpose: small areas are where disclosure risks live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REGIONS: tuple[str, ...] = (
    "North East",
    "North West",
    "Yorkshire and The Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
)


@dataclass(frozen=True)
class LocalAuthority:
    """One local authority and how it shapes the people living there."""

    code: str
    name: str
    region: str
    population_k: float
    deprivation: float
    diversity: float
    districts: str  # postcode districts, e.g. "LS1-29 LS98" (ranges expand)
    # Ethnic groups over-represented here, as multipliers of their national share.
    boosts: dict[str, float] = field(default_factory=dict)


_L = LocalAuthority
LOCAL_AUTHORITIES: tuple[LocalAuthority, ...] = (
    # North East
    _L("E08000021", "Newcastle upon Tyne", "North East", 300, 0.70, 0.8, "NE1-7 NE12 NE13 NE15"),
    _L("E08000024", "Sunderland", "North East", 274, 0.75, 0.2, "SR1-6"),
    _L("E06000047", "County Durham", "North East", 522, 0.65, 0.15, "DH1-9 DL4 DL5 DL12-17"),
    _L("E06000001", "Hartlepool", "North East", 92, 0.85, 0.15, "TS24-27"),
    _L("E06000002", "Middlesbrough", "North East", 143, 0.95, 0.6, "TS1-8", {"APKN": 2.0}),
    # North West
    _L(
        "E08000003",
        "Manchester",
        "North West",
        552,
        0.90,
        1.7,
        "M1-4 M8 M9 M11-16 M18-23 M40",
        {"APKN": 2.5, "BAFR": 1.5},
    ),
    _L("E08000012", "Liverpool", "North West", 486, 0.90, 0.6, "L1-27"),
    _L(
        "E06000008",
        "Blackburn with Darwen",
        "North West",
        154,
        0.88,
        1.4,
        "BB1-3",
        {"AIND": 4.0, "APKN": 4.0},
    ),
    _L("E06000009", "Blackpool", "North West", 141, 0.97, 0.2, "FY1-4"),
    _L("E08000001", "Bolton", "North West", 296, 0.70, 1.0, "BL1-7", {"AIND": 2.0}),
    # Yorkshire and The Humber
    _L("E08000035", "Leeds", "Yorkshire and The Humber", 812, 0.60, 0.8, "LS1-29"),
    _L("E08000019", "Sheffield", "Yorkshire and The Humber", 556, 0.65, 0.7, "S1-14 S17 S20 S35"),
    _L(
        "E08000032",
        "Bradford",
        "Yorkshire and The Humber",
        546,
        0.85,
        1.5,
        "BD1-18 BD20-22",
        {"APKN": 6.0},
    ),
    _L("E06000010", "Kingston upon Hull", "Yorkshire and The Humber", 267, 0.92, 0.4, "HU1-9"),
    _L(
        "E06000014",
        "York",
        "Yorkshire and The Humber",
        203,
        0.20,
        0.4,
        "YO1 YO10 YO19 YO23 YO24 YO26 YO30-32",
    ),
    # East Midlands
    _L("E06000018", "Nottingham", "East Midlands", 324, 0.88, 1.4, "NG1-11"),
    _L("E06000016", "Leicester", "East Midlands", 368, 0.80, 2.2, "LE1-5", {"AIND": 6.0}),
    _L("E06000015", "Derby", "East Midlands", 261, 0.65, 1.0, "DE1 DE3 DE21-24 DE65 DE72 DE73"),
    _L("E06000017", "Rutland", "East Midlands", 41, 0.05, 0.2, "LE15"),
    # West Midlands
    _L(
        "E08000025",
        "Birmingham",
        "West Midlands",
        1145,
        0.88,
        1.9,
        "B1-38 B42-45",
        {"APKN": 3.5, "BCRB": 2.0, "ABAN": 1.5},
    ),
    _L("E08000026", "Coventry", "West Midlands", 345, 0.60, 1.4, "CV1-6", {"AIND": 2.0}),
    _L("E08000027", "Dudley", "West Midlands", 323, 0.55, 0.5, "DY1-3 DY5 DY8 DY9"),
    _L("E06000021", "Stoke-on-Trent", "West Midlands", 259, 0.85, 0.6, "ST1-4 ST6"),
    _L("E06000019", "Herefordshire", "West Midlands", 187, 0.35, 0.25, "HR1-9", {"GRTH": 3.0}),
    # East of England
    _L("E06000031", "Peterborough", "East of England", 215, 0.60, 1.2, "PE1-7", {"GRTH": 4.0}),
    _L("E06000032", "Luton", "East of England", 225, 0.60, 2.0, "LU1-4", {"APKN": 4.0}),
    _L("E07000008", "Cambridge", "East of England", 146, 0.20, 1.1, "CB1-5", {"CHNE": 3.0}),
    _L("E07000148", "Norwich", "East of England", 144, 0.65, 0.5, "NR1-7"),
    _L("E06000033", "Southend-on-Sea", "East of England", 181, 0.50, 0.6, "SS0-3 SS9"),
    # London
    _L(
        "E09000001",
        "City of London",
        "London",
        8.6,
        0.15,
        2.0,
        "EC1A EC1M EC2A EC2M EC2V EC3A EC3M EC3N EC4A EC4M EC4N EC4V",
    ),
    _L(
        "E09000030",
        "Tower Hamlets",
        "London",
        310,
        0.75,
        2.8,
        "E1 E1W E2 E3 E14",
        {"ABAN": 12.0},
    ),
    _L(
        "E09000012",
        "Hackney",
        "London",
        259,
        0.80,
        2.4,
        "E5 E8 E9 N1 N16",
        {"BCRB": 3.0, "BAFR": 2.5, "GRTH": 2.0},
    ),
    _L(
        "E09000033",
        "Westminster",
        "London",
        205,
        0.40,
        2.5,
        "SW1A SW1E SW1P SW1V W1B W1D W1F W1G W1H W1J W1U W2 W9 NW8",
        {"ARAB": 5.0},
    ),
    _L(
        "E09000008",
        "Croydon",
        "London",
        391,
        0.50,
        2.0,
        "CR0 CR2-8 SE25",
        {"BCRB": 3.0, "BAFR": 2.0},
    ),
    _L(
        "E09000022",
        "Lambeth",
        "London",
        317,
        0.60,
        2.2,
        "SE1 SE11 SE24 SE27 SW2 SW4 SW8 SW9 SW16",
        {"BCRB": 3.5, "BAFR": 2.5},
    ),
    _L(
        "E09000020",
        "Kensington and Chelsea",
        "London",
        144,
        0.35,
        2.3,
        "W8 W10 W11 W14 SW3 SW5 SW7 SW10",
        {"ARAB": 5.0, "WOTH": 1.5},
    ),
    # South East
    _L("E06000045", "Southampton", "South East", 249, 0.55, 0.7, "SO14-19"),
    _L("E06000044", "Portsmouth", "South East", 208, 0.55, 0.6, "PO1-6"),
    _L("E06000043", "Brighton and Hove", "South East", 277, 0.45, 0.8, "BN1-3 BN41"),
    _L("E07000178", "Oxford", "South East", 162, 0.30, 1.1, "OX1-4"),
    _L("E06000046", "Isle of Wight", "South East", 140, 0.55, 0.2, "PO30-41"),
    # South West
    _L("E06000023", "Bristol", "South West", 472, 0.50, 0.7, "BS1-16", {"BAFR": 1.5}),
    _L("E06000026", "Plymouth", "South West", 265, 0.55, 0.25, "PL1-9"),
    _L(
        "E06000052",
        "Cornwall",
        "South West",
        570,
        0.55,
        0.15,
        "TR1-20 TR26 TR27 PL10-15 PL22-35",
        {"GRTH": 2.0},
    ),
    _L("E06000053", "Isles of Scilly", "South West", 2.1, 0.30, 0.1, "TR21-25"),
    _L("E07000041", "Exeter", "South West", 131, 0.35, 0.4, "EX1-4"),
)
LA_CODES: tuple[str, ...] = tuple(la.code for la in LOCAL_AUTHORITIES)

_RANGE = re.compile(r"^([A-Z]+)(\d+)-(\d+)$")


def expand_districts(spec: str) -> list[str]:
    """`"LS1-3 LS9"` → `["LS1", "LS2", "LS3", "LS9"]`."""
    out: list[str] = []
    for token in spec.split():
        m = _RANGE.match(token)
        if m:
            area, lo, hi = m.group(1), int(m.group(2)), int(m.group(3))
            out.extend(f"{area}{n}" for n in range(lo, hi + 1))
        else:
            out.append(token)
    return out


# Letters used in the inward code's unit (real postcodes avoid C, I, K, M, O, V there).
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

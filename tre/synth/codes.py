"""Reference code lists the synthetic extracts draw from (public, so policies can list them).

Every category a generator can emit comes from a tuple here; the dataset policies repeat these
lists as their public `categories`, and a test checks the two agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# --- calendar ---------------------------------------------------------------------------------

# The population is "as at" this date: everyone alive then, born on or before it.
REFERENCE_DATE = dt.date(2024, 3, 31)

# Academic years run September to August; 2016 means 2016/17.
ACADEMIC_YEAR_STARTS: tuple[int, ...] = tuple(range(2016, 2024))
ACADEMIC_YEARS: tuple[str, ...] = tuple(f"{y}/{(y + 1) % 100:02d}" for y in ACADEMIC_YEAR_STARTS)

# Tax years run 6 April to 5 April; 2018 means 2018-19.
TAX_YEAR_STARTS: tuple[int, ...] = tuple(range(2018, 2024))
TAX_YEARS: tuple[str, ...] = tuple(f"{y}-{(y + 1) % 100:02d}" for y in TAX_YEAR_STARTS)

# Hospital admissions fall in the six financial years the tax years cover.
HEALTH_START = dt.date(2018, 4, 1)
HEALTH_END = dt.date(2024, 3, 31)

SEXES: tuple[str, ...] = ("F", "M")

# --- ethnicity (DfE-style codes for the ONS 2021 groups, plus "not obtained") ---------------


@dataclass(frozen=True)
class Ethnicity:
    """One ethnic group: its code, label and share of England's population (2021, rounded)."""

    code: str
    label: str
    share: float


ETHNICITIES: tuple[Ethnicity, ...] = (
    Ethnicity("WBRI", "White British", 0.735),
    Ethnicity("WIRI", "White Irish", 0.009),
    # Gypsy, Roma and Irish Traveller: deliberately rare, a disclosure risk in small areas.
    Ethnicity("GRTH", "Gypsy, Roma or Irish Traveller", 0.0015),
    Ethnicity("WOTH", "Any other White background", 0.063),
    Ethnicity("MWBC", "White and Black Caribbean", 0.009),
    Ethnicity("MWBA", "White and Black African", 0.004),
    Ethnicity("MWAS", "White and Asian", 0.008),
    Ethnicity("MOTH", "Any other Mixed background", 0.007),
    Ethnicity("AIND", "Indian", 0.033),
    Ethnicity("APKN", "Pakistani", 0.027),
    Ethnicity("ABAN", "Bangladeshi", 0.011),
    Ethnicity("CHNE", "Chinese", 0.008),
    Ethnicity("AOTH", "Any other Asian background", 0.016),
    Ethnicity("BAFR", "Black African", 0.025),
    Ethnicity("BCRB", "Black Caribbean", 0.010),
    Ethnicity("BOTH", "Any other Black background", 0.005),
    Ethnicity("ARAB", "Arab", 0.006),
    Ethnicity("OOTH", "Any other ethnic group", 0.016),
    Ethnicity("NOBT", "Information not obtained", 0.005),
)
ETHNICITY_CODES: tuple[str, ...] = tuple(e.code for e in ETHNICITIES)
WHITE_BRITISH = 0  # index of WBRI, the group other shares are scaled against

# --- education --------------------------------------------------------------------------------

SEN_STATUSES: tuple[str, ...] = ("none", "sen_support", "ehcp")

# --- health -----------------------------------------------------------------------------------

ADMISSION_METHODS: tuple[str, ...] = ("elective", "emergency", "maternity", "other")


@dataclass(frozen=True)
class Chapter:
    """An ICD-10 chapter with sample codes (weights within the chapter) and OPCS-4 procedures."""

    numeral: str
    title: str
    codes: tuple[tuple[str, float], ...]
    procedures: tuple[str, ...]


# ICD-10 (WHO 2019) chapters with a few real codes each; the low weights make rare codes.
CHAPTERS: tuple[Chapter, ...] = (
    Chapter(
        "I",
        "Certain infectious and parasitic diseases",
        (("A09.9", 5), ("A41.9", 3), ("A08.4", 2), ("B34.9", 2), ("A49.9", 1), ("A15.0", 0.05)),
        ("X29.2",),
    ),
    Chapter(
        "II",
        "Neoplasms",
        (("C50.9", 4), ("C34.9", 3), ("C18.9", 3), ("C67.9", 2), ("D12.6", 3), ("C71.9", 0.5)),
        ("B27.4", "H07.9", "M42.1", "X35.2"),
    ),
    Chapter(
        "III",
        "Diseases of the blood and immune mechanism",
        (("D50.9", 4), ("D64.9", 4), ("D69.6", 1), ("D57.1", 0.3)),
        ("X33.2",),
    ),
    Chapter(
        "IV",
        "Endocrine, nutritional and metabolic diseases",
        (("E11.9", 4), ("E10.9", 2), ("E87.6", 2), ("E87.1", 2), ("E66.9", 1), ("E84.9", 0.1)),
        ("G28.3",),
    ),
    Chapter(
        "V",
        "Mental and behavioural disorders",
        (("F10.2", 4), ("F32.9", 3), ("F20.9", 2), ("F01.9", 2), ("F43.1", 1), ("F50.0", 0.2)),
        ("X38.4",),
    ),
    Chapter(
        "VI",
        "Diseases of the nervous system",
        (("G40.9", 4), ("G43.9", 2), ("G30.9", 2), ("G47.3", 2), ("G12.2", 0.1)),
        ("A52.1", "A65.1"),
    ),
    Chapter(
        "VII",
        "Diseases of the eye and adnexa",
        (("H25.9", 5), ("H26.9", 2), ("H40.1", 1), ("H33.0", 0.5)),
        ("C71.2", "C75.1", "C79.4"),
    ),
    Chapter(
        "VIII",
        "Diseases of the ear and mastoid process",
        (("H66.9", 3), ("H81.1", 2), ("H91.9", 1)),
        ("D15.1", "D20.3"),
    ),
    Chapter(
        "IX",
        "Diseases of the circulatory system",
        (("I21.9", 3), ("I48.9", 4), ("I50.9", 3), ("I63.9", 3), ("I26.9", 1), ("I25.1", 2)),
        ("K40.1", "K75.1", "K57.1", "K60.2"),
    ),
    Chapter(
        "X",
        "Diseases of the respiratory system",
        (("J18.9", 5), ("J44.1", 4), ("J45.9", 3), ("J06.9", 3), ("J20.9", 2), ("J21.9", 2)),
        ("E49.1", "E63.1"),
    ),
    Chapter(
        "XI",
        "Diseases of the digestive system",
        (("K35.8", 3), ("K80.2", 3), ("K57.3", 2), ("K21.9", 2), ("K52.9", 2), ("K40.9", 2)),
        ("H01.1", "J18.3", "G45.1", "H22.1", "T20.1"),
    ),
    Chapter(
        "XII",
        "Diseases of the skin and subcutaneous tissue",
        (("L03.1", 4), ("L02.9", 2), ("L89.9", 1)),
        ("S06.1", "S47.1"),
    ),
    Chapter(
        "XIII",
        "Diseases of the musculoskeletal system",
        (("M17.1", 3), ("M16.1", 3), ("M54.5", 2), ("M79.6", 1), ("M06.9", 1)),
        ("W37.1", "W40.1", "W38.1", "W82.3"),
    ),
    Chapter(
        "XIV",
        "Diseases of the genitourinary system",
        (("N39.0", 5), ("N18.5", 1), ("N20.0", 2), ("N30.0", 2)),
        ("M45.9", "M09.1", "M61.1", "Q07.4"),
    ),
    Chapter(
        "XV",
        "Pregnancy, childbirth and the puerperium",
        (("O80.9", 5), ("O82.9", 2), ("O03.9", 1), ("O21.0", 1), ("O47.9", 1), ("O70.1", 1)),
        ("R17.1", "R18.1", "R24.9", "R25.1"),
    ),
    Chapter(
        "XVI",
        "Certain conditions originating in the perinatal period",
        (("P07.3", 2), ("P59.9", 3), ("P22.1", 1), ("P36.9", 0.2)),
        ("X48.3",),
    ),
    Chapter(
        "XVII",
        "Congenital malformations and chromosomal abnormalities",
        (("Q21.1", 1), ("Q90.9", 0.5), ("Q35.9", 0.5), ("Q53.9", 1)),
        ("K11.1", "F29.1", "N09.1"),
    ),
    Chapter(
        "XVIII",
        "Symptoms, signs and abnormal findings",
        (("R07.4", 5), ("R10.4", 4), ("R56.8", 1), ("R06.0", 2), ("R50.9", 2)),
        ("U05.1", "U20.1"),
    ),
    Chapter(
        "XIX",
        "Injury, poisoning and external causes",
        (("S72.0", 3), ("S52.5", 2), ("S06.0", 3), ("T78.4", 1), ("S01.8", 2), ("T39.1", 1)),
        ("W19.1", "W24.1", "W46.1", "S57.1"),
    ),
    Chapter(
        "XX",
        "External causes of morbidity and mortality",
        (("W19.9", 3), ("X59.9", 2), ("V89.2", 1)),
        (),
    ),
    Chapter(
        "XXI",
        "Factors influencing health status and contact with health services",
        (("Z51.1", 2), ("Z49.1", 1), ("Z38.0", 2), ("Z30.2", 1), ("Z03.9", 2)),
        ("X40.3", "X70.1", "Q28.2"),
    ),
    Chapter(
        "XXII",
        "Codes for special purposes",
        (("U07.1", 3), ("U07.2", 0.5)),
        (),
    ),
)
CHAPTER_NUMERALS: tuple[str, ...] = tuple(c.numeral for c in CHAPTERS)
# Procedures recorded when the episode's chapter lists none (imaging and generic care).
GENERIC_PROCEDURES: tuple[str, ...] = ("U05.1", "U21.2", "Y53.4", "X59.1")

# Codes the health generator uses for specific kinds of episode.
BIRTH_DIAGNOSIS = "Z38.0"
DIALYSIS_DIAGNOSIS = "Z49.1"
CHEMOTHERAPY_DIAGNOSIS = "Z51.1"
DIALYSIS_PROCEDURE = "X40.3"
CHEMOTHERAPY_PROCEDURE = "X70.1"

# --- benefits and earnings --------------------------------------------------------------------

BENEFIT_TYPES: tuple[str, ...] = (
    "universal_credit",
    "child_benefit",
    "pip",
    "esa",
    "jsa",
    "pension_credit",
    "none",
)
EMPLOYMENT_STATUSES: tuple[str, ...] = (
    "employed",
    "self_employed",
    "unemployed",
    "inactive",
    "retired",
)

# Weekly rates by tax year (2018-19 … 2023-24), close to the published ones.
CHILD_BENEFIT_FIRST: tuple[float, ...] = (20.70, 20.70, 21.05, 21.15, 21.80, 24.00)
CHILD_BENEFIT_OTHER: tuple[float, ...] = (13.70, 13.70, 13.95, 14.00, 14.45, 15.90)
JSA_RATE: tuple[float, ...] = (73.10, 73.10, 74.35, 74.70, 77.00, 84.80)
# PIP components at 2018-19 rates (daily living std/enh, mobility std/enh), uprated by CPI.
PIP_DAILY_LIVING: tuple[float, ...] = (0.0, 57.30, 85.60)
PIP_MOBILITY: tuple[float, ...] = (0.0, 22.65, 59.75)
UPRATING: tuple[float, ...] = (1.000, 1.024, 1.041, 1.046, 1.078, 1.186)

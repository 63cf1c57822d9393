"""Built-in name lists. First names come in generations (a peak birth year each) so that a
child is more likely an Olivia than a Doreen; within a group, earlier names are more common."""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# (peak birth year, names); a peak of 0 means no fashion: equally likely in every generation.
NameGroups = tuple[tuple[int, tuple[str, ...]], ...]

FEMALE_FIRST_GROUPS: NameGroups = (
    (
        2015,
        _words(
            """Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Freya Willow
            Florence Emily Ella Poppy Evie Elsie Charlotte Evelyn Sienna Daisy Phoebe Sofia
            Alice Harper Matilda Ruby Emilia Maya Isabelle Millie Eva"""
        ),
    ),
    (
        1993,
        _words(
            """Sophie Jessica Chloe Lucy Hannah Emma Sarah Laura Rebecca Rachel Amy Katie Megan
            Hollie Lauren Bethany"""
        ),
    ),
    (
        1972,
        _words(
            """Nicola Claire Michelle Lisa Helen Joanne Kelly Louise Samantha Victoria Jennifer
            Elizabeth"""
        ),
    ),
    (
        1955,
        _words(
            """Susan Margaret Patricia Linda Karen Julie Tracey Deborah Dawn Angela Christine
            Janet Pauline Carol"""
        ),
    ),
    (
        1935,
        _words("""Jean Mary Barbara Valerie Maureen Brenda Sheila Doreen Joan Dorothy Irene"""),
    ),
    (
        0,
        _words(
            """Fatima Aisha Maryam Zainab Aaliyah Amina Hafsa Khadija Priya Anjali Sunita Nadia
            Yasmin Mei Chidinma Adaeze Ngozi Agnieszka Olena Siobhan Niamh Aoife"""
        ),
    ),
)

MALE_FIRST_GROUPS: NameGroups = (
    (
        2015,
        _words(
            """Noah Oliver George Arthur Leo Harry Oscar Archie Henry Theodore Freddie Jack
            Charlie Theo Jacob Alfie"""
        ),
    ),
    (
        1993,
        _words(
            """Thomas William James Joshua Daniel Samuel Joseph Benjamin Ethan Lewis Ryan Callum
            Connor Liam Jamie Luke Matthew Adam Nathan Kieran Jordan Ben"""
        ),
    ),
    (
        1970,
        _words(
            """Michael David Paul Mark Andrew Richard Stephen Christopher Robert John Peter
            Anthony Simon Gary Darren Lee Craig Wayne Ian Kevin"""
        ),
    ),
    (
        1945,
        _words(
            """Brian Alan Keith Colin Graham Trevor Derek Kenneth Ronald Raymond Dennis Roy
            Stanley"""
        ),
    ),
    (
        0,
        _words(
            """Muhammad Ahmed Mohammed Ali Omar Ibrahim Yusuf Hamza Bilal Imran Arjun Rahul
            Sanjay Ravi Wei Jun Chinedu Emeka Kwame Tomasz Piotr Andrei Mihai Sean Ciaran Declan
            Patrick"""
        ),
    ),
)

FEMALE_FIRST: tuple[str, ...] = tuple(n for _, group in FEMALE_FIRST_GROUPS for n in group)
MALE_FIRST: tuple[str, ...] = tuple(n for _, group in MALE_FIRST_GROUPS for n in group)

SURNAMES: tuple[str, ...] = _words(
    """
    Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson Thompson
    Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson Wood Turner
    Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen James Scott
    Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly Cook Carter
    Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall Anderson Simpson
    Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb Rogers Gray Mason Ali Hunt
    Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight Lloyd Butler Russell Barker
    Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Ahmed Fletcher Walsh Kaur Gibson
    Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day Brooks West
    Lawrence Cole Atkinson Bradley Spencer Gill Dawson Ball Burton O'Brien Watts Rose Booth Perry
    Ryan Grant Wells Armstrong Francis Rees Hayes Hart Hudson Newman Barrett Webster Hunter
    Gregory Carr Lowe Page Marsh Riley Dunn Woods Parsons Berry Stone Reid Holland Hawkins Harding
    Porter Robertson Newton Oliver Reed Kennedy Williamson Bird Gardner Shah Dean Lane Cooke Bates
    Henderson Parry Burgess Bishop Walton Burns Nicholson Shepherd Ross Cross Long Freeman Warren
    Nicholls Hamilton Byrne Sutton McDonald Yates Hodgson Robson Curtis Hopkins O'Connor Harper
    Coleman Watkins Moss McCarthy Chambers O'Neill Griffin Sharp Hardy Wheeler Potter Osborne
    Johnston Gordon Doyle Wallace George Jordan Hutchinson Rahman Chowdhury Mahmood Akhtar Iqbal
    Nguyen Chen Wang Li Okafor Adeyemi Mensah Kowalski Nowak Popescu Mistry Sharma Joshi
    """
)

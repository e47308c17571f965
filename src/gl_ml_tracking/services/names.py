"""Readable random run names (``adjective-animal-NNN``), as MLflow and GitLab give."""
from __future__ import annotations

import secrets

_ADJECTIVES = (
    "able brave bright calm clever crisp daring eager fair fancy gentle glad grand happy honest jolly kind "
    "lively lucky merry mighty nimble noble polite proud quick quiet rare rich sharp shy silent smart "
    "steady sunny swift tidy vast warm wise witty young zesty bold cool deft keen neat"
).split()
_ANIMALS = (
    "ant ape bass bat bear bee bird boar cat carp colt crab crow deer doe dog dove duck eel elk fawn "
    "finch fish fly fox frog gnat gnu goat hare hawk hen heron horse jay koala lamb lark lion lynx mole "
    "moth mouse mule newt owl ox panda pig pony ram rat robin seal shark sheep skunk slug snail snake "
    "squid stork swan tern toad trout wasp whale wolf worm wren yak zebra"
).split()


def random_run_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_ANIMALS)}-{secrets.randbelow(1000)}"

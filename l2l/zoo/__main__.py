"""``python -m l2l.zoo build | verify | list`` (``l2l.zoo.build.main``)."""

from l2l.zoo.build import main

main()

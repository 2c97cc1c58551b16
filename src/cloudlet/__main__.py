from __future__ import annotations

from cloudlet.cli.main import main

main()

from __future__ import annotations

from cloudlet.app.cli import main

main()

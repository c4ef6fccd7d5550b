from __future__ import annotations

from jobyard.cli.app import main

main()

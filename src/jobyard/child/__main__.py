"""``python -m jobyard.child <message-fd>``: a pre-started child for Python jobs."""

from jobyard.child.main import main

main()

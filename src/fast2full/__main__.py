import sys

from fast2full.cli import main

sys.exit(main())

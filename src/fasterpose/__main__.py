import sys

from fasterpose.cli import main

sys.exit(main())

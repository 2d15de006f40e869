import sys

from torii.cli import main

sys.exit(main())

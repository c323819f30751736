"""Built-in checks, imported in registry order (a check's needs come before it).

Check modules stay light at import: heavy libraries are imported inside the checks.
"""

from doctor.checks import environment as environment
from doctor.checks import network as network

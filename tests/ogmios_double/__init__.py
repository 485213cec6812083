"""An Ogmios v6 server double built from Ogmios' own schema (tests/data/ogmios), backed by
the layer-1 ledger double (:mod:`tests.layer1_double`). See :mod:`tests.ogmios_double.server`."""

"""The conformance cases: one file per part of PROTOCOL.md, every case tagged with ``@case``.

The machinery they use (rooms of recorded peers, verdicts, the plugin) lives one floor up in
:mod:`conformance`; this folder holds only the cases.
"""

"""The capture format that `agent-doctor watch` writes and `agent-doctor analyze` reads.

Pure: records to and from JSON lines, no files and no sockets; the relay and the readers
do the I/O. A package of its own, apart from both, so that the relay and the analysis share
one definition of the format (see README, "Capture format").
"""

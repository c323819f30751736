"""The capture format that `agent-doctor watch` writes and `agent-doctor analyze` reads.

Pure: records to and from JSON lines, no files and no sockets; the relay and the readers
do the I/O. Defined before the relay exists so that the analysis and the relay agree on one
format (see README, "Capture format").
"""

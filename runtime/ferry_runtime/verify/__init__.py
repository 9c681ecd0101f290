"""spec.verifyRequest: compare the source with what the sink holds, once per nonce.

The worker runs a verification on a thread of its own, with connections of its own, while
the stream goes on (:mod:`.coordinator`). It walks each selected table's primary key in
chunks (:mod:`.engine`):

- MySQL sink: per chunk, one consistent read on the source (at the exact binlog position P
  of its read view) and one on the target (whose checkpoint row, committed with the data,
  gives the position C the target's rows are at); a checksum of the chunk's rows on each
  side (:mod:`.checksum`, the same SQL expression over the mapped columns), and on a
  difference the rows' hashes one by one.
- Kafka sink: the latest record per key, read from the topics' beginning with
  ``read_committed`` (the topics hold every position up to C_lo and maybe some up to
  C_hi), compared with the source's rows, chunk by chunk.

A key whose rows differ is *drift* only if no change of that key was delivered between the
two positions compared: :mod:`.touched` records the keys of every batch the worker delivers
while a verification runs, and a difference is judged only once the worker's committed
position has passed P. Keys that changed in between are read again (up to a few rounds);
those still changing at the end are reported as unsettled, never as mismatches.
"""

//! Record batch v2 views over Bytes: scanner, header fields, CRC-32C.

package uplink

import (
	"encoding/binary"
	"fmt"
	"hash/crc64"
)

// End-to-end acknowledgement. A broker's PUBACK only says the broker has
// a message: Mosquitto, for one, drops queued messages when a session's
// queue overflows or it restarts without persistence. So the cloud, once
// a message's records are durable in its database (or the message was
// rejected for good), publishes on the truck's KindDurable topic the
// PayloadID of every such message, and a gateway configured with
// Config.Confirm deletes a batch only when every payload of it is
// confirmed that way, whatever broker sits between.

// maxDurableIDs bounds the ids one confirmation carries.
const maxDurableIDs = 1 << 16

var durableMagic = []byte("TGD\x01")

// PayloadID identifies an uplinked payload: the CRC-64 (ECMA) of its
// bytes. The gateway and the cloud compute it from the same bytes.
func PayloadID(payload []byte) uint64 { return crc64.Checksum(payload, crcTable) }

var crcTable = crc64.MakeTable(crc64.ECMA)

// EncodeDurable returns the payload of a confirmation naming ids (at
// most 65536): "TGD", version 1, a uvarint count, then each id as 8
// bytes little-endian.
func EncodeDurable(ids []uint64) ([]byte, error) {
	if len(ids) == 0 || len(ids) > maxDurableIDs {
		return nil, fmt.Errorf("uplink durable: %d ids, want 1..%d", len(ids), maxDurableIDs)
	}
	b := append([]byte(nil), durableMagic...)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	return b, nil
}

// DecodeDurable parses a confirmation made by EncodeDurable. Errors name
// what was wrong and wrap ErrFormat.
func DecodeDurable(p []byte) ([]uint64, error) {
	if len(p) < len(durableMagic) || string(p[:len(durableMagic)]) != string(durableMagic) {
		return nil, fmt.Errorf("%w: durable confirmation: bad magic or version", ErrFormat)
	}
	p = p[len(durableMagic):]
	n, k := binary.Uvarint(p)
	if k <= 0 || n == 0 || n > maxDurableIDs {
		return nil, fmt.Errorf("%w: durable confirmation: bad id count", ErrFormat)
	}
	p = p[k:]
	if uint64(len(p)) != 8*n {
		return nil, fmt.Errorf("%w: durable confirmation: %d bytes for %d ids", ErrFormat, len(p), n)
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint64(p[8*i:])
	}
	return ids, nil
}

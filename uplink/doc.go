// Package uplink carries a truck's buffered readings and alerts to the
// cloud over MQTT: the topic scheme, the versioned batch wire format, the
// downlink command format, and the publisher that deletes from the buffer
// only what the cloud confirmed durable (Config.Confirm; without it, what
// the broker acknowledged). The cloud imports the decoder
// (Decode, Limits, DecodeCommand's counterpart EncodeCommand) from here.
// PROTOCOL.md documents topics, payloads and delivery guarantees.
//
// Gateway side:
//
//	q, _ := buffer.Open(path, buffer.Options{}, log)
//	p, _ := uplink.NewPublisher(uplink.Config{BrokerURL: url, Truck: id, TLS: tlsCfg}, q, log)
//	g.Go(func() error { return p.Run(ctx) })
//	g.Go(func() error { for c := range p.Commands() { ... }; return nil })
//
// It must not detect or store readings itself, and it must not import
// anything downstream of it (gateway, cloud).
package uplink

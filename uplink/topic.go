package uplink

import (
	"fmt"
	"strings"
)

// Topic scheme (documented in uplink/PROTOCOL.md):
//
//	tankguard/v1/trucks/{truck}/up/telemetry   gateway -> cloud, QoS 1, batches of readings
//	tankguard/v1/trucks/{truck}/up/alerts      gateway -> cloud, QoS 1, batches of alert transitions and acks (priority lane)
//	tankguard/v1/trucks/{truck}/up/dtc         gateway -> cloud, QoS 1, retained JSON report of active trouble codes (DM1)
//	tankguard/v1/trucks/{truck}/status         gateway -> cloud, retained "online"/"offline" (last will)
//	tankguard/v1/trucks/{truck}/cmd            cloud -> gateway, QoS 1, JSON commands (config_update retained)
//	tankguard/v1/trucks/{truck}/durable        cloud -> gateway, QoS 1, ids of payloads now durable in the cloud (EncodeDurable)
const topicRoot = "tankguard/v1/trucks/"

// Topic kinds, the part after the truck id.
const (
	KindTelemetry = "up/telemetry"
	KindAlerts    = "up/alerts"
	KindStatus    = "status"
	KindCommand   = "cmd"
	KindDurable   = "durable"
)

// UpFilter is the subscription filter the cloud uses for all uplinked data.
const UpFilter = topicRoot + "+/up/#"

// DTCFilter is the subscription filter for every truck's DTC reports
// (covered by UpFilter too).
const DTCFilter = topicRoot + "+/" + KindDTC

// StatusFilter is the subscription filter for every truck's status.
const StatusFilter = topicRoot + "+/status"

// Topic returns the topic of the given kind for truck.
func Topic(truck, kind string) string { return topicRoot + truck + "/" + kind }

// ValidTruckID reports whether id can be used as a truck id: 1 to 64
// characters of letters, digits, '-' and '_'.
func ValidTruckID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ParseTopic splits a tankguard topic into truck id and kind.
func ParseTopic(topic string) (truck, kind string, err error) {
	rest, ok := strings.CutPrefix(topic, topicRoot)
	if !ok {
		return "", "", fmt.Errorf("topic %q: not under %s", topic, topicRoot)
	}
	truck, kind, ok = strings.Cut(rest, "/")
	if !ok || !ValidTruckID(truck) {
		return "", "", fmt.Errorf("topic %q: bad truck id", topic)
	}
	switch kind {
	case KindTelemetry, KindAlerts, KindStatus, KindCommand, KindDTC, KindDurable:
		return truck, kind, nil
	}
	return "", "", fmt.Errorf("topic %q: unknown kind %q", topic, kind)
}

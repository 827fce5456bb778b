package cloud

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// truckSim makes realistic readings of one truck at sensor resolution:
// coolant and cargo temperature at 1 Hz, wheel speed at 10 Hz, GNSS and
// J1939 position, speed, fix and satellites at 1 Hz.
type truckSim struct {
	rng                   *rand.Rand
	seq                   uint64
	t                     int64 // ns
	coolant, cargo, speed float64
	lat, lon              float64
	heading               float64
	step                  int
}

func newTruckSim(seed uint64, t0 time.Time) *truckSim {
	r := rand.New(rand.NewPCG(seed, 1))
	return &truckSim{rng: r, t: t0.UnixNano(), coolant: 85 + r.Float64()*5, cargo: 12 + r.Float64()*4, speed: 60 + r.Float64()*20,
		lat: 47 + r.Float64(), lon: 8 + r.Float64(), heading: r.Float64() * 2 * math.Pi}
}

func q(v, res float64) float64 { return math.Round(v/res) * res }

// next appends n readings (in seq order) to rs.
func (s *truckSim) next(rs []sensors.Reading, n int) []sensors.Reading {
	add := func(sig sensors.Signal, v float64) {
		s.seq++
		rs = append(rs, sensors.Reading{Seq: s.seq, Time: s.t, Value: v, Signal: sig})
	}
	for len(rs) < n {
		s.step++
		s.t += int64(100 * time.Millisecond)
		s.speed = math.Max(0, math.Min(90, s.speed+s.rng.NormFloat64()*0.3))
		add(sensors.WheelSpeed, q(s.speed, 1.0/256))
		if s.step%10 != 0 {
			continue
		}
		s.coolant += (88-s.coolant)*0.01 + s.rng.NormFloat64()*0.2
		s.cargo += (14-s.cargo)*0.005 + s.rng.NormFloat64()*0.05
		d := s.speed / 3.6 / 111_000
		s.lat += d * math.Cos(s.heading)
		s.lon += d * math.Sin(s.heading)
		s.heading += s.rng.NormFloat64() * 0.01
		add(sensors.CoolantTemp, q(s.coolant, 1))
		add(sensors.CargoTemp, q(s.cargo, 0.03125))
		add(sensors.VPLatitude, q(s.lat, 1e-7))
		add(sensors.VPLongitude, q(s.lon, 1e-7))
		add(sensors.GNSSLatitude, q(s.lat+s.rng.NormFloat64()*2e-6, 1e-6))
		add(sensors.GNSSLongitude, q(s.lon+s.rng.NormFloat64()*2e-6, 1e-6))
		add(sensors.GNSSSpeed, q(s.speed+s.rng.NormFloat64()*0.2, 0.1))
		add(sensors.GNSSFixQuality, 1)
		add(sensors.GNSSSatellites, float64(9+s.rng.IntN(3)))
	}
	return rs
}

// BenchmarkIngest measures readings per second from MQTT publishers
// through the embedded broker, dedup, re-detection and the bbolt commit
// into Parquet objects in the local archive, and the archive's size per
// reading. One op is one batch of 1000 readings.
func BenchmarkIngest(b *testing.B) {
	const per, publishers = 1000, 16
	c := startCloud(b, b.TempDir(), func(c *Config) {
		c.FlushInterval = 500 * time.Millisecond
		c.Time.MaxPast = 365 * 24 * time.Hour // a long run's readings stay in the accepted window
	})
	// Readings 100 ms apart, all before now: none is quarantined.
	t0 := time.Now().Add(-time.Duration(b.N/publishers+1)*per*100*time.Millisecond - time.Minute)
	payloads := make([][][]byte, publishers) // pre-encoded per publisher
	topics := make([]string, publishers)
	counts := make([][]int, publishers)
	for p := range publishers {
		truck := fmt.Sprintf("B%03d", p)
		topics[p] = uplink.Topic(truck, uplink.KindTelemetry)
		sim := newTruckSim(uint64(p), t0)
		for i := 0; i < b.N/publishers+1; i++ {
			rs := sim.next(make([]sensors.Reading, 0, per), per)
			pl, err := uplink.Encode(uplink.Batch{Truck: truck, Readings: rs})
			if err != nil {
				b.Fatal(err)
			}
			payloads[p] = append(payloads[p], pl)
			counts[p] = append(counts[p], len(rs))
		}
	}
	clients := make([]mqtt.Client, publishers)
	for p := range clients {
		clients[p] = dial(b, c.BrokerAddr(), fmt.Sprintf("bench-%d", p))
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	total := 0
	for p := range publishers {
		n := b.N / publishers
		if p < b.N%publishers {
			n++
		}
		for i := range n {
			total += counts[p][i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if tok := clients[p].Publish(topics[p], 1, false, payloads[p][i]); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					b.Errorf("publish: %v", tok.Error())
					return
				}
			}
		}()
	}
	wg.Wait()
	c.flushNow() // measure the flush work, not the wait for the interval tick
	waitFor(b, "archive", func() bool { return c.Stats().ArchiveRows >= uint64(total) })
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	s := c.Stats()
	if s.Readings != uint64(total) {
		b.Fatalf("accepted %d readings, want %d", s.Readings, total)
	}
	b.ReportMetric(float64(total)/el.Seconds(), "cloud_ingest_readings_per_s:readings/s")
	b.ReportMetric(float64(s.ArchiveBytes)/float64(s.ArchiveRows), "archive_bytes_per_reading:bytes")
	// Load-independent: readings per second of this process's CPU time
	// (publishers included), i.e. the rate one otherwise idle core would
	// reach.
	b.ReportMetric(float64(total)/cpu.Seconds(), "readings/cpu-s")
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkNotifyLatency measures, with 1000 trucks connected and each
// sending a second of telemetry every second, the time from the cloud
// opening an incident (its detection, in the same commit) to a webhook
// receiving the notification. One op is one truck's overheat; p99 is
// reported over all ops.
func BenchmarkNotifyLatency(b *testing.B) {
	const fleet = 1000
	var mu sync.Mutex
	var lat []float64
	got := make(chan struct{}, 1<<16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var n incident.Notification
		// Only the injected overheats (the background telemetry may raise
		// the cloud's own incidents, e.g. a stuck sensor).
		if err := json.NewDecoder(r.Body).Decode(&n); err == nil && n.Event == incident.EventOpened && n.Incident.Kind == "limit" {
			mu.Lock()
			lat = append(lat, float64(now.Sub(n.Incident.OpenedAt))/1e6)
			mu.Unlock()
			got <- struct{}{}
		}
	}))
	defer hook.Close()
	c := startCloud(b, b.TempDir(), func(c *Config) {
		c.Notify.Webhooks = []WebhookConfig{{URL: hook.URL, Secret: "k"}}
	})
	clients := make([]mqtt.Client, fleet)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i] = dial(b, c.BrokerAddr(), fmt.Sprintf("truck-%04d", i))
			publish(b, clients[i], uplink.Topic(fmt.Sprintf("N%04d", i), uplink.KindStatus), []byte("online"))
		}()
	}
	wg.Wait()
	// Background telemetry: every truck, every second, in its own seq
	// range (alerts below use small seqs). Speeds and positions only: the
	// simulator's 1 °C coolant often looks stuck to the detector, and a
	// thousand such incidents at once are not what this measures.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		sims := make([]*truckSim, fleet)
		for i := range sims {
			sims[i] = newTruckSim(uint64(i), time.Now().Add(-time.Hour))
			sims[i].seq = 1 << 30
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			for i, cl := range clients {
				truck := fmt.Sprintf("N%04d", i)
				rs := slices.DeleteFunc(sims[i].next(nil, 19), func(r sensors.Reading) bool { return r.Signal.IsTemperature() })
				p, err := uplink.Encode(uplink.Batch{Truck: truck, Readings: rs})
				if err == nil {
					cl.Publish(uplink.Topic(truck, uplink.KindTelemetry), 1, false, p)
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); bg.Wait() }()
	t0 := time.Now().Add(-time.Hour).UTC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := i % fleet
		truck := fmt.Sprintf("N%04d", k)
		seq := uint64(i/fleet) * 1000
		tr := detect.Transition{Seq: seq + 1, Truck: truck, Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical,
			Phase: detect.Raised, Start: t0.Add(time.Duration(i) * time.Minute).UnixNano(), Time: t0.Add(time.Duration(i)*time.Minute + 10*time.Second).UnixNano(), Value: 120}
		clr := tr
		clr.Seq, clr.Phase = seq+2, detect.Cleared
		p, _ := uplink.Encode(uplink.Batch{Truck: truck, Alerts: []detect.Transition{tr}})
		publish(b, clients[k], uplink.Topic(truck, uplink.KindAlerts), p)
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("notification not received")
		}
		p, _ = uplink.Encode(uplink.Batch{Truck: truck, Alerts: []detect.Transition{clr}})
		publish(b, clients[k], uplink.Topic(truck, uplink.KindAlerts), p)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	b.Logf("n=%d p50=%.0f p90=%.0f p99=%.0f max=%.0f ms", len(lat), lat[len(lat)/2], lat[len(lat)*9/10], lat[(len(lat)*99)/100], lat[len(lat)-1])
	b.ReportMetric(lat[(len(lat)*99)/100], "notify_latency_p99_ms:ms")
}

package firmwaresim

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/abc4logistics/tankguard/sensors"
)

// ptyPort is one simulated serial device: a pseudo-terminal whose slave
// path a gateway opens. The simulator keeps the slave open itself, so a
// gateway may open and close the path as often as it likes without the
// master seeing a hang-up. The slave is raw (no echo, no line editing, no
// CR/LF translation). Writes never block: while nobody drains the terminal
// and its buffer is full, output is dropped (and not recorded as truth).
type ptyPort struct {
	master, slave *mfile
	mfd           int
	path          string
	pending       []byte
}

// mfile is the part of *os.File the port needs.
type mfile = os.File

func openPTY() (*ptyPort, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if err := makeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("pty raw mode: %w", err)
	}
	mfd := int(master.Fd())
	if err := unix.SetNonblock(mfd, true); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("pty non-blocking: %w", err)
	}
	return &ptyPort{master: master, slave: slave, mfd: mfd, path: slave.Name()}, nil
}

// makeRaw is cfmakeraw(3).
func makeRaw(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
}

// send writes b without blocking and reports whether it was taken. A
// backlog left by a partial write goes first; while it cannot, b is
// dropped.
func (p *ptyPort) send(b []byte) bool {
	for len(p.pending) > 0 {
		n, err := unix.Write(p.mfd, p.pending)
		if n > 0 {
			p.pending = p.pending[n:]
		}
		if err != nil || n <= 0 {
			return false
		}
	}
	if len(b) == 0 {
		return false
	}
	n, _ := unix.Write(p.mfd, b)
	if n <= 0 {
		return false
	}
	if n < len(b) {
		p.pending = append(p.pending[:0], b[n:]...)
	}
	return true
}

// unread reports how many bytes the reader has not taken yet.
func (p *ptyPort) unread() int {
	n, err := unix.IoctlGetInt(int(p.slave.Fd()), unix.TIOCINQ)
	if err != nil {
		return 0
	}
	return n + len(p.pending)
}

func (p *ptyPort) close() {
	p.master.Close()
	p.slave.Close()
}

// drainSerial waits, up to timeout, until every terminal's reader has taken
// what was written, so stopping does not discard output already recorded
// as truth. Terminals nobody reads just wait out the timeout.
func (s *Sim) drainSerial(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, t := range s.trucks {
		for _, p := range []*ptyPort{t.gps, t.probe} {
			for p != nil && time.Now().Before(deadline) {
				if len(p.pending) > 0 {
					p.send(nil)
				}
				if p.unread() == 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

// nmeaLines formats the truck's RMC and GGA (and VTG) sentences for GNSS
// time gnss, with the faults in e applied.
func (t *truck) nmeaLines(gnss time.Time, e *effects) []byte {
	p := t.phys
	talker := "GP"
	if t.idx%2 == 1 {
		talker = "GN"
	}
	u := gnss.UTC()
	hms := fmt.Sprintf("%02d%02d%02d.%02d", u.Hour(), u.Minute(), u.Second(), u.Nanosecond()/1e7)
	date := fmt.Sprintf("%02d%02d%02d", u.Day(), int(u.Month()), u.Year()%100)
	b := t.line[:0]
	if e.gpsLost {
		b = t.appendNMEA(b, talker+"RMC,"+hms+",V,,,,,,,"+date+",,,N", e)
		b = t.appendNMEA(b, talker+"GGA,"+hms+",,,,,0,00,,,M,,M,,", e)
		if t.scen.VTG {
			b = t.appendNMEA(b, talker+"VTG,,T,,M,,N,,K,N", e)
		}
		t.line = b
		return b
	}
	dlat, dlon := p.gpsJitter()
	lat, lon := p.lat+dlat, p.lon+dlon
	latS, ns := nmeaAngle(lat, 2), "N"
	if lat < 0 {
		ns = "S"
	}
	lonS, ew := nmeaAngle(lon, 3), "E"
	if lon < 0 {
		ew = "W"
	}
	sog := math.Max(0, p.speed+0.2*p.rng.NormFloat64()*b2f(p.speed > 1))
	knots := strconv.FormatFloat(sog/1.852, 'f', 2, 64)
	course := strconv.FormatFloat(math.Mod(p.heading+360, 360), 'f', 1, 64)
	b = t.appendNMEA(b, talker+"RMC,"+hms+",A,"+latS+","+ns+","+lonS+","+ew+","+knots+","+course+","+date+",,,A", e)
	b = t.appendNMEA(b, fmt.Sprintf("%sGGA,%s,%s,%s,%s,%s,1,%02d,0.9,12.0,M,47.0,M,,", talker, hms, latS, ns, lonS, ew, p.sats), e)
	if t.scen.VTG {
		kmh := strconv.FormatFloat(sog, 'f', 2, 64)
		b = t.appendNMEA(b, talker+"VTG,"+course+",T,,M,"+knots+",N,"+kmh+",K,A", e)
	}
	t.line = b
	return b
}

// appendNMEA appends "$body*hh\r\n", damaged per e.nmeaGarbage.
func (t *truck) appendNMEA(b []byte, body string, e *effects) []byte {
	start := len(b)
	b = append(b, '$')
	b = append(b, body...)
	b = append(b, '*')
	b = append(b, sensors.NMEAChecksum(body)...)
	if e.nmeaGarbage > 0 && t.phys.rng.Float64() < e.nmeaGarbage {
		bad := t.corruptSentence(append([]byte(nil), b[start:]...))
		b = append(b[:start], bad...)
	}
	return append(b, '\r', '\n')
}

// nmeaAngle formats |deg| as NMEA (d)ddmm.mmmmm.
func nmeaAngle(deg float64, degDigits int) string {
	m := int64(math.Round(math.Abs(deg) * 60 * 1e5)) // 1e-5 minutes
	d, rem := m/(60*1e5), m%(60*1e5)
	return fmt.Sprintf("%0*d%02d.%05d", degDigits, d, rem/1e5, rem%1e5)
}

// probeLine formats the cargo-tank probe sentence (sensors.ProbeParser's
// protocol) for value v, or a fault report when mode is "error" or
// "not_available".
func (t *truck) probeLine(v float64, mode string) []byte {
	body := "PTGCT,0," + strconv.FormatFloat(v, 'f', 2, 64) + ",A"
	if mode == "error" || mode == "not_available" {
		body = "PTGCT,0,,V"
	}
	b := t.probeBuf[:0]
	b = append(b, '$')
	b = append(b, body...)
	b = append(b, '*')
	b = append(b, sensors.NMEAChecksum(body)...)
	b = append(b, '\r', '\n')
	t.probeBuf = b
	return b
}

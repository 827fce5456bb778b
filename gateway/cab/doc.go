// Package cab serves the in-cab driver display of one truck and drives an
// optional hardware buzzer or lamp on a Linux GPIO line.
//
// The gateway's pipeline feeds a Server with the latest readings
// (Server.Readings), the detector's alert transitions (Server.Transition),
// the uplink state (Server.Uplink) and operators' acknowledgements that
// came down from the cloud (Server.RemoteAck). The Server keeps the current
// picture of the truck and pushes it to every connected page over
// Server-Sent Events: alert transitions at once (the latency-critical path),
// readings and uplink state a few times a second. The page (embedded in the
// binary: no CDN, no external fonts or scripts) takes over the screen with
// colour, plain-words text and a buzzer pattern per severity while an alert
// is open, and offers one large acknowledge button. A press becomes a
// detect.Ack handed to the gateway through the func given to Server.OnAck;
// the buzzer stops until the alert gets worse.
//
// The page is made for a kiosk browser on a cab tablet, e.g.
//
//	chromium --kiosk --autoplay-policy=no-user-gesture-required http://127.0.0.1:8081/
//
// Without the autoplay flag a browser keeps the alarm silent until the first
// touch; the page then says so in a yellow bar at the top of the alert
// view, which never covers the acknowledge button. A hardware buzzer on
// GPIO (Config.GPIO) sounds regardless of the browser.
//
// The page says only what is known: no normal band until the gateway has
// learned one (Server.SetBand), the critical banner and text while a
// reading is above the critical limit even before the detector's sustain
// has made the alert critical, and the fleet link in words.
//
// Everything works with no network beyond the cab's own loopback or LAN
// link: nothing here depends on the uplink or the cloud.
//
// Only the display's own page may acknowledge: the request's Host must be
// one of the display's names (loopback, the listen host, Config.Hosts), so
// a page on a rebinding DNS name is refused, and the browser must say it is
// same-origin (Origin, Sec-Fetch-Site). Only the button makes a driver's
// acknowledgement (detect.AckDriver); RemoteAck never counts as one.
//
// cab must not import buffer, uplink or cloud (they are downstream of
// detect); it reads only sensors and detect types. It never reads files,
// flags or the environment: cmd/ builds its Config.
package cab

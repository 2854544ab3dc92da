#pragma once
// The "cdc.watch" config section: how the watchdog (`nightjar-backup cdc watch`) checks connectors, probes
// their sources, backs off and alerts.
#include <map>
#include <string>
#include <vector>

#include "nightjar/cdc/probe.hpp"
#include "nightjar/run/hooks.hpp"

namespace nightjar {
class JsonFields;
}  // namespace nightjar

namespace nightjar::cdc {

struct WatchBackoff {
    double initial_s =
        60;              // the wait before the restart after a first relapse, and while Kafka Connect is down
    double max_s = 900;  // waits double up to this
};

struct WatchConfig {
    double check_interval_s = 60;  // how often every connector's status is read
    double probe_interval_s = 60;  // how often the source of a paused FAILED connector is probed
    double probe_timeout_s = 5;    // one probe
    double settle_s = 120;         // RUNNING this long after the resume before a connector counts as healed
    double max_wait_min = 30;      // alert when a failure (or Kafka Connect down) lasts this long
    double alert_repeat_min = 60;  // alert again this often while it lasts
    WatchBackoff backoff;          // after relapses and while Kafka Connect does not answer
    std::map<std::string, SourceProbe> probes;  // per connector name; none: the source is assumed healthy
    std::vector<HookCommand> on_alert;          // commands run on an alert and on the recovery notice
    std::string ping_url;  // its own healthchecks check (alert: /fail, recovery: success); "" = the
                           // monitoring ping_url (alert: /fail, recovery: /log)
};

// Parses the "watch" object of the cdc section; Kind::Config errors name the JSON pointer.
WatchConfig parse_watch_config(const JsonFields& f);

}  // namespace nightjar::cdc

"""A real Home Assistant Core for Bellhop's tests, run with the venv's Python.

    home_assistant.py CONFIG_DIR MQTT_PORT

Prepares CONFIG_DIR the first time (a minimal configuration bound to 127.0.0.1 on a free port,
the onboarding's core-config step marked done so nothing is installed at start), starts
`hass` with pip installs off, onboards it through the REST API the first time (later starts
refresh the stored token), adds the MQTT integration through its config flow when it is not
there yet, and prints `READY {"url": …, "token": …}` once MQTT is loaded. It stops Home Assistant
when standard input closes or it is told to stop; Home Assistant also stops when this process
dies (parent-death signal). Home Assistant's console output goes to CONFIG_DIR/console.log,
appended at every start, since HA rotates its own log file.
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

CLIENT_ID = "http://127.0.0.1/"
USER = {"name": "Bellhop Test", "username": "bellhop", "password": "bellhop-test-password"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, method="GET", body=None, token=None, form=False, timeout=10):
    headers = {}
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as answer:
        text = answer.read().decode()
        return json.loads(text) if text else None


def prepare(config_dir):
    """The configuration (once; the port stays the same across restarts)."""
    os.makedirs(os.path.join(config_dir, ".storage"), exist_ok=True)
    settings_path = os.path.join(config_dir, "bellhop-test.json")
    if os.path.exists(settings_path):
        with open(settings_path) as f:
            return json.load(f)
    settings = {"port": free_port()}
    with open(os.path.join(config_dir, "configuration.yaml"), "w") as f:
        f.write(
            "homeassistant:\n"
            "  name: Bellhop test\n"
            "  latitude: 52.5\n  longitude: 13.4\n  elevation: 0\n"
            "  unit_system: metric\n  time_zone: UTC\n  country: DE\n  currency: EUR\n"
            "http:\n"
            "  server_host: 127.0.0.1\n"
            f"  server_port: {settings['port']}\n"
            "api:\nwebsocket_api:\nconfig:\n"
            "logger:\n  default: warning\n"
        )
    # The core-config step would set up and pip-install more integrations: marked done.
    with open(os.path.join(config_dir, ".storage", "onboarding"), "w") as f:
        json.dump(
            {"version": 4, "minor_version": 1, "key": "onboarding", "data": {"done": ["core_config"]}},
            f,
        )
    with open(settings_path, "w") as f:
        json.dump(settings, f)
    return settings


def die_with_parent():
    """Runs in the child before `hass` starts: SIGTERM when this helper dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(config_dir):
    hass = os.path.join(os.path.dirname(sys.executable), "hass")
    log = open(os.path.join(config_dir, "console.log"), "a")
    log.write(f"==== start {time.time()}\n")
    log.flush()
    return subprocess.Popen(
        [hass, "-c", config_dir, "--skip-pip"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )


def wait_up(url, process, within=90):
    deadline = time.time() + within
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"Home Assistant exited with {process.returncode}")
        try:
            request(f"{url}/api/onboarding", timeout=2)
            return
        except urllib.error.HTTPError:
            # Onboarded already: the onboarding views are gone, the server is up.
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.3)
    raise SystemExit("Home Assistant did not answer in time")


def token_of(url, config_dir):
    """An access token: onboarding the first time, the stored refresh token after."""
    auth_path = os.path.join(config_dir, "bellhop-test-auth.json")
    if os.path.exists(auth_path):
        with open(auth_path) as f:
            refresh = json.load(f)["refresh_token"]
        answer = request(
            f"{url}/auth/token",
            "POST",
            {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID},
            form=True,
        )
        return answer["access_token"]
    created = request(
        f"{url}/api/onboarding/users",
        "POST",
        dict(USER, client_id=CLIENT_ID, language="en"),
    )
    tokens = request(
        f"{url}/auth/token",
        "POST",
        {"grant_type": "authorization_code", "code": created["auth_code"], "client_id": CLIENT_ID},
        form=True,
    )
    access = tokens["access_token"]
    request(f"{url}/api/onboarding/analytics", "POST", {}, token=access)
    request(
        f"{url}/api/onboarding/integration",
        "POST",
        {"client_id": CLIENT_ID, "redirect_uri": CLIENT_ID},
        token=access,
    )
    with open(auth_path, "w") as f:
        json.dump({"refresh_token": tokens["refresh_token"]}, f)
    return access


def mqtt_entry(url, token):
    entries = request(f"{url}/api/config/config_entries/entry", token=token) or []
    return next((e for e in entries if e.get("domain") == "mqtt"), None)


def ensure_mqtt(url, token, mqtt_port, within=60):
    if mqtt_entry(url, token) is None:
        flow = request(f"{url}/api/config/config_entries/flow", "POST", {"handler": "mqtt"}, token=token)
        while flow.get("type") == "form":
            flow = request(
                f"{url}/api/config/config_entries/flow/{flow['flow_id']}",
                "POST",
                {"broker": "127.0.0.1", "port": mqtt_port} if flow.get("step_id") == "broker" else {},
                token=token,
            )
        if flow.get("type") != "create_entry":
            raise SystemExit(f"the MQTT config flow did not create an entry: {flow}")
    deadline = time.time() + within
    while time.time() < deadline:
        entry = mqtt_entry(url, token)
        if entry and entry.get("state") == "loaded":
            return
        time.sleep(0.3)
    raise SystemExit(f"the MQTT integration did not load: {mqtt_entry(url, token)}")


def main():
    config_dir, mqtt_port = sys.argv[1], int(sys.argv[2])
    settings = prepare(config_dir)
    url = f"http://127.0.0.1:{settings['port']}"
    process = start(config_dir)

    def stop(*_):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    wait_up(url, process)
    token = token_of(url, config_dir)
    ensure_mqtt(url, token, mqtt_port)
    print("READY " + json.dumps({"url": url, "token": token}), flush=True)
    for _ in sys.stdin:
        pass
    stop()


if __name__ == "__main__":
    main()

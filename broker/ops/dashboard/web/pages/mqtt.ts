/**
 * MQTT client: connect from this page to the broker's WebSocket listener with
 * mqtt.js's browser build (loaded only when this page opens), subscribe,
 * publish, and watch what arrives.
 */
import type { MqttClient } from "mqtt";
import { get } from "../api.js";
import { fill, h, toast } from "../dom.js";
import type { Page } from "../live.js";

const MAX_MESSAGES = 500;

export const mqttPage: Page = {
  id: "mqtt",
  title: "MQTT client",
  mount(root) {
    let client: MqttClient | null = null;
    const url = h("input", { type: "text", id: "mqtt-url", placeholder: "ws://host:port/mqtt" });
    const clientId = h("input", { type: "text", id: "mqtt-client-id", value: `dashboard-${Math.random().toString(16).slice(2, 8)}` });
    const username = h("input", { type: "text", id: "mqtt-username", placeholder: "username (optional)", autocomplete: "off" });
    const password = h("input", { type: "password", id: "mqtt-password", placeholder: "password (optional)", autocomplete: "off" });
    const connectBtn = h("button", { type: "submit", id: "mqtt-connect" }, "Connect");
    const state = h("span", { class: "status down", id: "mqtt-state" }, "disconnected");
    const subTopic = h("input", { type: "text", id: "mqtt-sub-topic", value: "#" });
    const subQos = h("select", { id: "mqtt-sub-qos" }, ...["0", "1", "2"].map((q) => h("option", { value: q }, `QoS ${q}`)));
    const pubTopic = h("input", { type: "text", id: "mqtt-pub-topic", placeholder: "topic" });
    const pubPayload = h("textarea", { id: "mqtt-pub-payload", placeholder: "payload" });
    const pubQos = h("select", { id: "mqtt-pub-qos" }, ...["0", "1", "2"].map((q) => h("option", { value: q }, `QoS ${q}`)));
    const pubRetain = h("input", { type: "checkbox", id: "mqtt-pub-retain" });
    const messages = h("div", { class: "mqtt-messages", id: "mqtt-messages" });
    const subsList = h("ul", { id: "mqtt-subs" });

    void get<{ ws: { port: number; path: string } | null }>("/dashboard/api/info").then((info) => {
      if (info.ws) url.value = `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:${info.ws.port}${info.ws.path}`;
      else url.placeholder = "this broker has no WebSocket listener (config: ws)";
    });

    const setState = (text: string, up: boolean) => {
      state.textContent = text;
      state.classList.toggle("down", !up);
      connectBtn.textContent = client ? "Disconnect" : "Connect";
    };

    const connectForm = h("form", { class: "toolbar" }, url, clientId, username, password, connectBtn, state);
    connectForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (client) {
        client.end(true);
        client = null;
        return setState("disconnected", false);
      }
      const { default: mqtt } = await import("mqtt");
      const c = mqtt.connect(url.value, {
        clientId: clientId.value,
        ...(username.value ? { username: username.value } : {}),
        ...(password.value ? { password: password.value } : {}),
        reconnectPeriod: 0,
        connectTimeout: 10_000,
        // The default timers run in a Worker made from a blob: URL, which this page's CSP does not allow.
        timerVariant: "native",
      });
      client = c;
      setState("connecting…", false);
      c.on("connect", () => setState("connected", true));
      c.on("error", (err) => toast(`MQTT: ${err.message}`, "error"));
      c.on("close", () => {
        if (client === c) client = null;
        setState("disconnected", false);
      });
      c.on("message", (topic, payload, packet) => {
        const text = new TextDecoder().decode(payload);
        messages.prepend(
          h(
            "div",
            { class: "mqtt-message" },
            h("span", { class: "time" }, new Date().toLocaleTimeString()),
            h("span", { class: "topic" }, topic),
            h("span", { class: "muted" }, `QoS ${packet.qos}${packet.retain ? " retained" : ""}`),
            h("pre", { class: "payload" }, text),
          ),
        );
        while (messages.childElementCount > MAX_MESSAGES) messages.lastElementChild!.remove();
      });
    });

    const subForm = h("form", { class: "toolbar" }, subTopic, subQos, h("button", { type: "submit", id: "mqtt-subscribe" }, "Subscribe"));
    subForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!client) return toast("Connect first", "error");
      const topic = subTopic.value;
      client.subscribe(topic, { qos: Number(subQos.value) as 0 | 1 | 2 }, (err, granted) => {
        if (err) return toast(err.message, "error");
        const g = granted?.[0];
        if (g && g.qos === 128) return toast(`Subscription to ${topic} refused`, "error");
        subsList.append(
          h("li", null, topic, " ", h("button", { type: "button", class: "link", on: { click: (e) => (client?.unsubscribe(topic), (e.target as HTMLElement).parentElement?.remove()) } }, "unsubscribe")),
        );
      });
    });

    const pubForm = h("form", { class: "publish" }, pubTopic, pubPayload, h("div", { class: "toolbar" }, pubQos, h("label", null, pubRetain, " retain"), h("button", { type: "submit", id: "mqtt-publish" }, "Publish")));
    pubForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!client) return toast("Connect first", "error");
      client.publish(pubTopic.value, pubPayload.value, { qos: Number(pubQos.value) as 0 | 1 | 2, retain: pubRetain.checked }, (err) => {
        if (err) toast(err.message, "error");
      });
    });

    root.append(
      h("h2", null, "MQTT client"),
      h("p", { class: "muted" }, "A client in this page, over the broker's WebSocket listener: the broker's plugins judge it like any other client."),
      connectForm,
      h("div", { class: "split" }, h("div", null, h("h3", null, "Subscribe"), subForm, subsList, h("h3", null, "Publish"), pubForm), h("div", null, h("h3", null, "Messages"), messages)),
    );
    fill(subsList);
    return () => {
      client?.end(true);
      client = null;
    };
  },
};

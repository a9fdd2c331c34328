/**
 * aedes 1.2 bugs the hostile-input tests found, worked around from outside.
 *
 * Phantom clients. aedes runs a CONNECT through a series of asynchronous steps
 * (authenticate, fetch and restore subscriptions, store the will, register,
 * CONNACK). If the connection closes while a store step is in flight, the
 * close finds nothing registered to unregister, and the series then goes on
 * to register the already-closed client: it stays in `aedes.clients` and in
 * `connectedClients` for good, and its will stays in the store. A client that
 * connects and disconnects at once, over and over, grows both without bound.
 * The fix: a client that is already closed when aedes registers it is
 * unregistered on the spot, and its stored will deleted.
 */
import type { Aedes, Client } from "aedes";

interface ClientInternals {
  closed: boolean;
  id: string;
}

export function installAedesFixes(aedes: Aedes): void {
  const broker = aedes as unknown as {
    clients: Record<string, Client>;
    id: string;
    unregisterClient(client: Client): void;
    persistence: { delWill(client: { id: string; brokerId: string }): Promise<unknown> };
  };
  aedes.on("client", (client) => {
    const c = client as unknown as ClientInternals;
    if (!c.closed || broker.clients[c.id] !== client) return;
    broker.unregisterClient(client);
    broker.persistence.delWill({ id: c.id, brokerId: broker.id }).then(
      () => {},
      () => {},
    );
  });
}

/** In-memory Texture-shaped data for the demo backend (the JSON shapes of the Texture API). */
export interface Device {
  id: string;
  referenceId: string;
  manufacturer: string;
  model: string;
  type: string;
  name: string;
  state: Record<string, unknown>;
  tags: string[];
  siteId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Command {
  id: string;
  deviceId: string;
  deviceType: string;
  action: string;
  input: unknown;
  status: 'pending' | 'succeeded';
  createdAt: string;
}

const MODELS = [
  { manufacturer: 'ecobee', model: 'SmartThermostat Premium', type: 'thermostat', state: { mode: 'heat', heatSetpoint: 20.5, ambientTemperature: 19.8 } },
  { manufacturer: 'tesla', model: 'Powerwall 3', type: 'battery', state: { chargePercentage: 82, gridStatus: 'connected', mode: 'self_consumption' } },
  { manufacturer: 'enphase', model: 'IQ8', type: 'solar_inverter', state: { power: 3120, energyToday: 14.2 } },
  { manufacturer: 'chargepoint', model: 'Home Flex', type: 'charger', state: { isCharging: false, chargeRate: 0 } },
] as const;

const DEMO_USERS = ['alice', 'bob'] as const;
const T0 = '2026-01-05T09:00:00.000Z';

export function demoDevices(users: readonly string[] = DEMO_USERS, perUser = 2): Device[] {
  const out: Device[] = [];
  for (const user of users) {
    for (let i = 0; i < perUser; i++) {
      const m = MODELS[i % MODELS.length]!;
      out.push({
        id: `dev_${user}_${i + 1}`,
        referenceId: user,
        manufacturer: m.manufacturer,
        model: m.model,
        type: m.type,
        name: `${user[0]!.toUpperCase()}${user.slice(1)}'s ${m.type.replace('_', ' ')} ${i + 1}`,
        state: { ...m.state },
        tags: i === 0 ? ['home'] : [],
        siteId: `site_${user}`,
        createdAt: T0,
        updatedAt: T0,
      });
    }
  }
  return out;
}

export function page<T>(items: readonly T[], pageNo: number, perPage: number): { data: T[]; page: number; perPage: number; totalItems: number; totalPages: number } {
  const start = (pageNo - 1) * perPage;
  return {
    data: items.slice(start, start + perPage),
    page: pageNo,
    perPage,
    totalItems: items.length,
    totalPages: Math.max(1, Math.ceil(items.length / perPage)),
  };
}

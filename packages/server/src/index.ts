export { startServer, VERSION, type RunningServer, type StartOptions } from './server.js';
export { configFrom, parseConfig, ConfigError, type Config } from './config.js';
export { ManualClock, systemClock, type Clock } from './domain/clock.js';

// The synthetic events the delivery tests and the delivery bench send.
export { syntheticEvent } from '../support/events';

// The delivery tests send the bench's synthetic events.
export { syntheticEvent } from '../../bench/delivery-events';

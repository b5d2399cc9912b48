import { groupPage } from './group.js';

groupPage('channels');

import { groupPage } from './group.js';

groupPage('projects');

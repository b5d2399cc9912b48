build-tsan/obj/src/net/conn.o: src/net/conn.c src/net/rate.h \
 src/net/server.h src/config.h src/util/buf.h src/util/list.h \
 src/util/log.h src/util/xalloc.h src/ws/frame.h
src/net/rate.h:
src/net/server.h:
src/config.h:
src/util/buf.h:
src/util/list.h:
src/util/log.h:
src/util/xalloc.h:
src/ws/frame.h:

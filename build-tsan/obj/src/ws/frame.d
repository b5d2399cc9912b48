build-tsan/obj/src/ws/frame.o: src/ws/frame.c src/ws/frame.h \
 src/util/xalloc.h
src/ws/frame.h:
src/util/xalloc.h:
